"""Monitoring services shared by the pages, the reports and the command line."""

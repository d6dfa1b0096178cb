"""Authentication, authorisation and the access gate."""

"""Pure plotly figure builders: arrays and frames in, ``go.Figure`` out."""

"""Static HTML report and plots, read from the run store."""

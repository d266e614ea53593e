"""Agreement with people and how it is shown: statistics, plots and reports."""

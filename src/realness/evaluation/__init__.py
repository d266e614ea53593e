"""Agreement with people and how it is shown: statistics and plots."""

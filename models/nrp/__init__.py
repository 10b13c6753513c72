"""Neural representations for prediction (NRP, Raziperchikolaei et al. 2020): NRP-direct."""

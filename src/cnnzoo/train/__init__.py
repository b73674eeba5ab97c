"""Training: ``fit(TrainConfig)``, evaluation and run directories."""

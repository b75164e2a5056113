"""visionkit.interpret."""

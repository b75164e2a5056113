"""visionkit.train."""

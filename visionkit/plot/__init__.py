"""visionkit.plot."""

"""visionkit.export."""

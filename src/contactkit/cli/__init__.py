"""contactkit.cli."""

"""cabinlift: synthetic pre-training of 2D-to-3D pose lifters for in-cabin driver monitoring."""

__version__ = "0.1.0"

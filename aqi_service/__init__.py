"""aqi-service: real-time air-quality disclosure for a city's environmental bureau."""

__version__ = "0.1.0"

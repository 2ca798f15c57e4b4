"""trackdechets-connector: business-system records to Trackdéchets BSDs, exactly once."""

__version__ = "0.1.0"

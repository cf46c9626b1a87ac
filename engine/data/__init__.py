"""Event files: format, validation, writer/recorder and the synthetic generator."""

from engine.data.format import EventFile, EventFileError, EventHeader, header_path
from engine.data.writer import EventRecorder, EventWriter

__all__ = [
    "EventFile",
    "EventFileError",
    "EventHeader",
    "EventRecorder",
    "EventWriter",
    "header_path",
]

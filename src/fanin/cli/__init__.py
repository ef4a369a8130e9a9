"""Command-line entry points: parse, call the library, pick a renderer, write."""

"""``python -m mosaic.interfaces.mcp [--toolsets ...] [--tools ...] [--read-only]``: MCP on stdio."""

from mosaic.interfaces.cli.serve import mcp_main

if __name__ == "__main__":
    mcp_main()

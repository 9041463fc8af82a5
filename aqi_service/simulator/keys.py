"""Typed keys of the simulator app's state."""

from __future__ import annotations

import asyncio

from aiohttp import web

from aqi_service.simulator.model import Simulator

SIMULATOR = web.AppKey("simulator", Simulator)
"""The data model the routes serve."""

CLOSING = web.AppKey("simulator_closing", asyncio.Event)
"""Set when the app shuts down, so handlers sleeping for a ``timeout`` fault return."""

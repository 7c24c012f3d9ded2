"""The stand-in's Web API, one module per API family; bot/offline/standin/server.py puts them together."""

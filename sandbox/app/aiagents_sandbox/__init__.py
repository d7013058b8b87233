"""The sandbox AI Agents Platform: worker, webhook API, exporter and stand-ins."""

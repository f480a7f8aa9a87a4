"""The syncs endpoints of the REST API (/api/v1/syncs): status per store and a trigger. They share the API's
authentication, errors, rendering and schema (the api package)."""

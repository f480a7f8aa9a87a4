"""The REST API: serializers, filters, views and routes for customers, plus sync status and triggers."""

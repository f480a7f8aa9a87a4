"""What every REST endpoint shares: the error shape and its handlers (errors), JSON rendering (renderers), API-key
authentication (authentication, key_cache), permission (permissions), throttling (throttling), cursor pagination
(pagination), query-string parsing (query), strict serializers and the error's shape (serializers), and the
OpenAPI pieces every endpoint uses (schema, examples).

The apps contribute their views and routes (customers.api, syncs.api; mounted by api.urls) and build them on this
package; nothing here imports an app's API module, models or services: this package sits on `stores` (API keys)
and `pos_integrations` (its errors) only.
"""

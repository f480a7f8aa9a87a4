"""The customers endpoints of the REST API (/api/v1/customers, /customers/search): views, routes, filters,
serializers and examples, built on the api package."""

"""HTTP layer of the hub: dependencies and one router per resource."""

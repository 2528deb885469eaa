package envoy.authz_test

import rego.v1
import data.envoy.authz

test_small_charge_allowed if authz.allow with input as {
	"attributes": {"request": {"http": {"method": "POST", "headers": {}}}},
	"parsed_path": ["payments.v1.Payments", "Charge"],
	"parsed_body": {"amount": 10},
}

test_large_charge_needs_approval if not authz.allow with input as {
	"attributes": {"request": {"http": {"method": "POST", "headers": {}}}},
	"parsed_path": ["payments.v1.Payments", "Charge"],
	"parsed_body": {"amount": 5000},
}

package envoy.authz

import rego.v1

default allow := false

# Only POSTs to the Payments service, and charges above 1000 need an approval header.
allow if {
	input.attributes.request.http.method == "POST"
	startswith(input.parsed_path[0], "payments.v1.Payments")
	not needs_approval
}

allow if {
	needs_approval
	input.attributes.request.http.headers["x-approved-by"] != ""
}

needs_approval if input.parsed_body.amount > 1000

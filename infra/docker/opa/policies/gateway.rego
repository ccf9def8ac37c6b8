# Who may do what through the platform gateway. The gateway asks for data.chaos.gateway.allow
# on every request and treats anything but an explicit `true` as deny.
#
# Input: {"subject": {"role": ...}, "tenant": <the caller's tenant>,
#         "action": "read" | "write" | "delete", "resource": {"tenant": ..., ...}}
#
# OPA (the compose stack) and regopy (the sandbox) both load this file, so it keeps to plain
# Rego v1. rego-cpp also accepts things OPA rejects (v0 rule bodies, unsafe variables), so
# check a change with `opa check` when you have OPA at hand.
package chaos.gateway

default allow := false

# Platform admins may do anything, in any tenant.
allow if input.subject.role == "admin"

# Viewers read, editors read and write; both only inside their own tenant. Nobody but an
# admin deletes.
allow if {
	input.action in role_actions[input.subject.role]
	same_tenant
}

role_actions := {
	"viewer": {"read"},
	"editor": {"read", "write"},
}

# The tenant must be a real name: two missing tenants are undefined (no match), but two
# nulls or two empty strings would compare equal.
same_tenant if {
	is_string(input.tenant)
	input.tenant != ""
	input.tenant == input.resource.tenant
}

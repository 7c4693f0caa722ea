//! The OpenAPI 3.0 description of `/api/v1`, written out by hand next to the routes it
//! describes (the test `openapi_lists_every_route` compares the two) rather than derived:
//! one small document a person can read, with the error shape and the write-only secrets
//! stated once.

use axum::Json;
use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// A page of a list: the JSON array (`schema`) with its `X-Total-Count` and `Link`
/// headers.
fn page_json(description: &str, schema: Value) -> Value {
    let mut response = ok_json(description, schema);
    response["headers"] = json!({
        "X-Total-Count": { "description": "How many items the whole list holds (all pages)",
            "schema": { "type": "integer", "minimum": 0 } },
        "Link": { "description": "RFC 8288: the next page (rel=\"next\", absent on the last page) and the previous one (rel=\"prev\"), as URI references with the other query parameters kept, e.g. </api/v1/domains?offset=100&limit=100>; rel=\"next\". Absent when the page is the whole list.",
            "schema": { "type": "string" } }
    });
    response
}

fn page_params() -> [Value; 2] {
    [
        json!({ "name": "offset", "in": "query", "schema": { "type": "integer", "minimum": 0 },
                "description": "Items skipped (default 0)" }),
        json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1 },
                "description": "Items on the page" }),
    ]
}

fn name_param() -> Value {
    json!({ "name": "name", "in": "path", "required": true, "schema": { "type": "string" },
            "description": "A domain name; Unicode names are converted to A-labels." })
}

fn id_param() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } })
}

/// An operation's responses: `ok`'s, and the 401 every operation may answer.
fn common(ok: Value) -> Value {
    let mut responses = json!({
        "401": error_response("No or unknown bearer token"),
    });
    if let (Some(map), Some(ok)) = (responses.as_object_mut(), ok.as_object()) {
        for (k, v) in ok {
            map.insert(k.clone(), v.clone());
        }
    }
    responses
}

/// PUT or PATCH of the object named in the path: `body` is what it takes, `ok` what it
/// answers, and `refusals` what its 400, 404, 409 and 422 mean.
fn update_operation(summary: &str, body: &Value, ok: Value, refusals: [&str; 4]) -> Value {
    let [bad_request, unknown, read_only, invalid] = refusals;
    json!({
        "summary": summary,
        "parameters": [name_param()],
        "requestBody": body,
        "responses": common(json!({
            "200": ok,
            "400": error_response(bad_request),
            "404": error_response(unknown),
            "409": error_response(read_only),
            "413": error_response("Body too large"),
            "415": error_response("Not JSON"),
            "422": error_response(invalid),
        })),
    })
}

/// The routes described, as (path, method) — kept in step with [`crate::api::router`].
pub const ROUTES: &[(&str, &str)] = &[
    ("/domains", "get"),
    ("/domains", "post"),
    ("/domains/{name}", "get"),
    ("/domains/{name}", "put"),
    ("/domains/{name}", "patch"),
    ("/domains/{name}", "delete"),
    ("/domains/{name}/records", "get"),
    ("/domains/{name}/plan", "post"),
    ("/domains/{name}/check", "post"),
    ("/dnsServers", "get"),
    ("/dnsServers", "post"),
    ("/dnsServers/{name}", "get"),
    ("/dnsServers/{name}", "put"),
    ("/dnsServers/{name}", "patch"),
    ("/dnsServers/{name}", "delete"),
    ("/dnsServers/{name}/test", "post"),
    ("/dkimSignatures", "get"),
    ("/tasks", "get"),
    ("/tasks", "post"),
    ("/tasks/{id}", "get"),
    ("/tasks/{id}/retry", "post"),
    ("/tasks/{id}/cancel", "post"),
    ("/tasks/{id}/reschedule", "post"),
    ("/apiTokens", "get"),
    ("/apiTokens", "post"),
    ("/apiTokens/{id}", "delete"),
    ("/openapi.json", "get"),
];

pub fn spec() -> Value {
    let domain_body = json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "additionalProperties": true,
        "description": "The domain's config table (the file's camelCase keys: dnsManagement, dkimManagement (automatic only), dmarc, mtaSts, caa, …)" } } } });
    let domain_update = |summary: &str| {
        let domain = json!({ "$ref": "#/components/schemas/Domain" });
        update_operation(
            summary,
            &domain_body,
            ok_json(
                "The domain, with the task scheduled for it (or null)",
                domain,
            ),
            [
                "Invalid name or JSON",
                "Unknown domain",
                "Defined in the config file (named in the message)",
                "The definition is invalid",
            ],
        )
    };
    let dns_server_body = json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "additionalProperties": true,
        "description": "The DNS server's config table: kind (rfc2136), host, port, protocol, keyName, key (base64, write-only), algorithm, ttl, propagationDelay, pollingInterval, propagationTimeout, authoritativeServers" } } } });
    let dns_server_update = |summary: &str| {
        update_operation(
            summary,
            &dns_server_body,
            ok_json("The DNS server", json!({ "type": "object" })),
            [
                "Malformed body or name",
                "Unknown DNS server",
                "Defined in the config file",
                "Invalid definition",
            ],
        )
    };
    let domain_delete = json!({
        "summary": "Remove a domain defined through the API",
        "parameters": [name_param()],
        "responses": common(json!({
            "204": { "description": "Removed" },
            "400": error_response("Invalid name"),
            "404": error_response("Unknown domain"),
            "409": error_response("Defined in the config file (named in the message)"),
        })),
    });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "mailzone API",
            "version": "1",
            "description": "Every DNS record a mail domain needs, published and checked. Errors are {\"error\": {\"code\", \"message\"}}. Secrets (TSIG keys, DKIM private keys, tokens) are write-only: no response contains them."
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": { "error": { "type": "object", "required": ["code", "message"],
                        "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } }
                },
                "Task": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string" },
                        "type": { "type": "string", "enum": ["DnsManagement", "DkimRotation", "TlsaSync", "AcmeRenewal"] },
                        "domain": { "type": "string" },
                        "updateRecords": { "type": "array", "items": { "type": "string" } },
                        "onSuccessRenewCertificate": { "type": "boolean", "description": "DnsManagement: chain an AcmeRenewal task after a successful publication. AcmeRenewal: it was chained so, and renews even when the certificate is not due" },
                        "status": { "type": "string", "enum": ["Scheduled", "Running", "Retry", "Succeeded", "Failed", "Cancelled"] },
                        "progress": { "type": "string", "nullable": true },
                        "attempts": { "type": "integer" },
                        "dueAt": { "type": "string", "format": "date-time" },
                        "leaseOwner": { "type": "string", "nullable": true },
                        "leaseUntil": { "type": "string", "format": "date-time", "nullable": true },
                        "failureReason": { "type": "string", "nullable": true },
                        "result": { "type": "string", "nullable": true },
                        "createdAt": { "type": "string", "format": "date-time" },
                        "updatedAt": { "type": "string", "format": "date-time" }
                    }
                },
                "NewTask": {
                    "type": "object", "required": ["domain"], "additionalProperties": false,
                    "properties": {
                        "type": { "type": "string", "enum": ["DnsManagement", "DkimRotation", "TlsaSync"] },
                        "domain": { "type": "string" },
                        "updateRecords": { "type": "array", "items": { "type": "string" } },
                        "onSuccessRenewCertificate": { "type": "boolean", "description": "DnsManagement only: after a successful publication, renew the [server.acme] certificate over DNS-01 (a chained AcmeRenewal task); 422 without [server.acme]" }
                    }
                },
                "ConnectionTest": {
                    "type": "object", "required": ["dnsServer", "zone", "ok"],
                    "properties": {
                        "dnsServer": { "type": "string" }, "zone": { "type": "string" },
                        "ok": { "type": "boolean" },
                        "serial": { "type": "integer", "nullable": true, "description": "ok: the zone's SOA serial (null for a provider without serials)" },
                        "endpoint": { "type": "string", "description": "ok: the address the host resolved to, the API's host:port, the zone file or the provider" },
                        "readBy": { "type": "string", "enum": ["transfer", "queries", "listing", "file"] },
                        "authenticated": { "type": "boolean", "description": "ok: the answers proved the configured TSIG key or API credentials accepted" },
                        "elapsedMs": { "type": "integer" },
                        "error": { "type": "object", "description": "not ok: what failed",
                            "properties": {
                                "code": { "type": "string", "enum": ["unreachable", "unavailable", "conflict", "refused", "auth", "protocol", "invalid_config", "store", "other"] },
                                "message": { "type": "string" },
                                "transient": { "type": "boolean", "description": "trying again later can help" } } }
                    }
                },
                "Domain": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" }, "origin": { "type": "string" },
                        "dnsManagement": { "type": "object" }, "dkimManagement": { "type": "object" },
                        "source": { "type": "string", "enum": ["config", "api"] }, "configFile": { "type": "string", "nullable": true },
                        "task": { "nullable": true, "allOf": [{ "$ref": "#/components/schemas/Task" }] }
                    }
                }
            }
        },
        "paths": {
            "/domains": {
                "get": { "summary": "List domains in the config's order (all of them, or a page with offset and limit; X-Total-Count and Link say where the page stands)",
                    "parameters": page_params(),
                    "responses": common(json!({
                    "200": page_json("Domains", json!({ "type": "array", "items": { "$ref": "#/components/schemas/Domain" } })),
                    "400": error_response("Invalid query") })) },
                "post": { "summary": "Create a domain (a DnsManagement task is scheduled when it is under automatic management)",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "required": ["name"], "additionalProperties": true,
                        "properties": { "name": { "type": "string" }, "dnsManagement": { "type": "object" }, "dkimManagement": { "type": "object" } } } } } },
                    "responses": common(json!({
                        "201": ok_json("The domain, with the task scheduled for it (or null)", json!({ "$ref": "#/components/schemas/Domain" })),
                        "400": error_response("Malformed body or name"),
                        "409": error_response("The domain exists (in the config file, or through the API)"),
                        "413": error_response("Body too large"),
                        "415": error_response("Not JSON"),
                        "422": error_response("Invalid body") })) }
            },
            "/domains/{name}": {
                "get": { "summary": "One domain", "parameters": [name_param()], "responses": common(json!({
                    "200": ok_json("The domain", json!({ "$ref": "#/components/schemas/Domain" })),
                    "400": error_response("Invalid name"), "404": error_response("Unknown domain") })) },
                "put": domain_update("Replace a domain defined through the API"),
                "patch": domain_update("Change keys of a domain defined through the API (JSON merge patch, RFC 7396: null removes a key)"),
                "delete": domain_delete
            },
            "/domains/{name}/records": {
                "get": { "summary": "The domain's records (dnsZoneFile with format=zone)",
                    "parameters": [name_param(),
                        { "name": "format", "in": "query", "schema": { "type": "string", "enum": ["json", "zone"] } },
                        { "name": "types", "in": "query", "schema": { "type": "string" }, "description": "Comma-separated record types" }],
                    "responses": common(json!({
                        "200": { "description": "Records", "content": {
                            "application/json": { "schema": { "type": "array", "items": { "type": "object" } } },
                            "text/dns": { "schema": { "type": "string" } } } },
                        "400": error_response("Invalid name, format or type"),
                        "404": error_response("Unknown domain"),
                        "422": error_response("The records cannot be planned") })) }
            },
            "/domains/{name}/plan": {
                "post": { "summary": "What publishing would change (nothing is changed)", "parameters": [name_param()],
                    "responses": common(json!({
                        "200": ok_json("The plan", json!({ "type": "object" })),
                        "400": error_response("Invalid name"), "404": error_response("Unknown domain"),
                        "422": error_response("Manual DNS management"), "502": error_response("The DNS server failed"),
                        "503": error_response("The DNS server cannot be reached") })) }
            },
            "/domains/{name}/check": {
                "post": { "summary": "Check what DNS serves", "parameters": [name_param()],
                    "requestBody": { "required": false, "content": { "application/json": { "schema": {
                        "type": "object", "additionalProperties": false,
                        "properties": { "nameservers": { "type": "array", "items": { "type": "string" } }, "fetchMtaSts": { "type": "boolean" } } } } } },
                    "responses": common(json!({
                        "200": ok_json("Findings", json!({ "type": "object" })),
                        "400": error_response("Invalid name or body"), "404": error_response("Unknown domain"),
                        "413": error_response("Body too large"), "415": error_response("Not JSON"),
                        "422": error_response("Invalid body") })) }
            },
            "/dnsServers": {
                "get": { "summary": "DNS servers (keys are write-only)", "responses": common(json!({
                    "200": ok_json("DNS servers", json!({ "type": "array", "items": { "type": "object" } })) })) },
                "post": { "summary": "Create a DNS server (the TSIG `key` is stored sealed and never returned)",
                    "requestBody": dns_server_body,
                    "responses": common(json!({
                        "201": ok_json("The DNS server", json!({ "type": "object" })),
                        "400": error_response("Malformed body or name"), "409": error_response("Exists"),
                        "413": error_response("Body too large"), "415": error_response("Not JSON"),
                        "422": error_response("Invalid definition") })) }
            },
            "/dnsServers/{name}": {
                "get": { "summary": "One DNS server", "parameters": [name_param()], "responses": common(json!({
                    "200": ok_json("The DNS server", json!({ "type": "object" })), "400": error_response("Invalid name"),
                    "404": error_response("Unknown DNS server") })) },
                "put": dns_server_update("Replace a DNS server defined through the API"),
                "patch": dns_server_update("Change keys of a DNS server defined through the API (JSON merge patch, RFC 7396: null removes a key)"),
                "delete": { "summary": "Remove a DNS server defined through the API", "parameters": [name_param()],
                    "responses": common(json!({
                        "204": { "description": "Removed" }, "400": error_response("Invalid name"),
                        "404": error_response("Unknown DNS server"), "409": error_response("Defined in the config file"),
                        "422": error_response("A domain publishes through it") })) }
            },
            "/dnsServers/{name}/test": {
                "post": { "summary": "Test connection: read a zone's SOA serial (and the zone, as a publication does) with the DNS server's credentials; nothing is changed. A failed test is a 200 with ok false",
                    "parameters": [name_param()],
                    "requestBody": { "required": false, "content": { "application/json": { "schema": {
                        "type": "object", "additionalProperties": false,
                        "properties": { "zone": { "type": "string", "description": "Default: the zone of the first domain publishing through the DNS server" } } } } } },
                    "responses": common(json!({
                        "200": ok_json("The test's outcome", json!({ "$ref": "#/components/schemas/ConnectionTest" })),
                        "400": error_response("Invalid name, zone or body"), "404": error_response("Unknown DNS server"),
                        "413": error_response("Body too large"), "415": error_response("Not JSON"),
                        "422": error_response("No zone given and no domain publishes through the DNS server") })) }
            },
            "/dkimSignatures": { "get": { "summary": "DKIM keys with their public halves: the config's, then the stored ones domain by domain (all of them, or a page with offset and limit)",
                "parameters": page_params(),
                "responses": common(json!({
                "200": page_json("Keys", json!({ "type": "array", "items": { "type": "object" } })),
                "400": error_response("Invalid query") })) } },
            "/tasks": {
                "get": { "summary": "Tasks, newest first, a page at a time (X-Total-Count and Link say where the page stands)",
                    "parameters": [
                        { "name": "status", "in": "query", "schema": { "type": "string", "enum": ["Scheduled", "Running", "Retry", "Succeeded", "Failed", "Cancelled"] } },
                        { "name": "domain", "in": "query", "schema": { "type": "string" }, "description": "Only this domain's tasks" },
                        { "name": "type", "in": "query", "schema": { "type": "string", "enum": ["DnsManagement", "DkimRotation", "TlsaSync", "AcmeRenewal"] } },
                        { "name": "offset", "in": "query", "schema": { "type": "integer", "minimum": 0 }, "description": "Tasks skipped (default 0)" },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 }, "description": "Tasks on the page (default 100)" }],
                    "responses": common(json!({
                        "200": page_json("Tasks", json!({ "type": "array", "items": { "$ref": "#/components/schemas/Task" } })),
                        "400": error_response("Invalid query") })) },
                "post": { "summary": "Schedule a task (returns at once)",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewTask" } } } },
                    "responses": common(json!({
                        "202": ok_json("Scheduled", json!({ "$ref": "#/components/schemas/Task" })),
                        "400": error_response("Malformed body"), "404": error_response("Unknown domain"),
                        "413": error_response("Body too large"), "415": error_response("Not JSON"),
                        "422": error_response("Invalid task") })) }
            },
            "/tasks/{id}": { "get": { "summary": "One task", "parameters": [id_param()], "responses": common(json!({
                "200": ok_json("The task", json!({ "$ref": "#/components/schemas/Task" })), "404": error_response("Unknown task") })) } },
            "/tasks/{id}/retry": { "post": { "summary": "Run a Failed task again", "parameters": [id_param()], "responses": common(json!({
                "202": ok_json("Scheduled", json!({ "$ref": "#/components/schemas/Task" })),
                "404": error_response("Unknown task"), "409": error_response("Running or Succeeded") })) } },
            "/tasks/{id}/cancel": { "post": { "summary": "Cancel a Scheduled or Retry task: it will not run (a Running task cannot be cancelled)",
                "parameters": [id_param()], "responses": common(json!({
                "200": ok_json("Cancelled", json!({ "$ref": "#/components/schemas/Task" })),
                "404": error_response("Unknown task"), "409": error_response("Running, or already ended") })) } },
            "/tasks/{id}/reschedule": { "post": { "summary": "Run a Scheduled, Retry or Failed task at dueAt (default: now); a Failed one is Scheduled again with its attempts reset",
                "parameters": [id_param()],
                "requestBody": { "required": false, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false,
                    "properties": { "dueAt": { "type": "string", "format": "date-time", "description": "RFC 3339; default: now" } } } } } },
                "responses": common(json!({
                "202": ok_json("Rescheduled", json!({ "$ref": "#/components/schemas/Task" })),
                "400": error_response("Malformed body or dueAt"), "404": error_response("Unknown task"),
                "409": error_response("Running, Succeeded or Cancelled"),
                "413": error_response("Body too large"), "415": error_response("Not JSON") })) } },
            "/apiTokens/{id}": { "delete": { "summary": "Revoke a token (refused for the last one)",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": common(json!({
                    "204": { "description": "Revoked" },
                    "404": error_response("Unknown token"),
                    "409": error_response("The only token left") })) } },
            "/apiTokens": { "get": { "summary": "List the tokens (ids and names; never a token)",
                "responses": common(json!({
                    "200": ok_json("The tokens", json!({ "type": "object", "properties": { "apiTokens": { "type": "array", "items": {
                        "type": "object", "properties": { "id": { "type": "string" }, "name": { "type": "string" }, "createdAt": { "type": "string" } } } } } })) })) },
              "post": { "summary": "Create a token (shown once)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["name"], "additionalProperties": false, "properties": { "name": { "type": "string" } } } } } },
                "responses": common(json!({
                    "201": ok_json("The token", json!({ "type": "object", "properties": { "id": { "type": "string" }, "name": { "type": "string" }, "token": { "type": "string" } } })),
                    "400": error_response("Malformed body"), "413": error_response("Body too large"),
                    "415": error_response("Not JSON"), "422": error_response("Invalid name") })) } },
            "/openapi.json": { "get": { "summary": "This description", "responses": common(json!({
                "200": ok_json("OpenAPI 3.0", json!({ "type": "object" })) })) } }
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_lists_every_route() {
        let spec = super::spec();
        let paths = spec["paths"].as_object().unwrap();
        for (path, method) in super::ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is routed but not described"
            );
        }
        let described: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(described, super::ROUTES.len(), "described but not routed");
    }
}

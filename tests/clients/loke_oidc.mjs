// Runs openid-client (v5 and v6, as published on npm, unmodified) against the mock's LOKE issuer:
// discovery, the client-credentials grant with client_secret_basic and client_secret_post, then
// LOKE calls with the token. Usage: node loke_oidc.mjs <issuer> <api base URL> (credentials in
// the environment: LOKE_CLIENT_ID, LOKE_CLIENT_SECRET). Prints one JSON object on stdout.
import { Issuer } from "openid-client";
import * as v6 from "openid-client-v6";

const [issuerUrl, apiBase] = process.argv.slice(2);
const clientId = process.env.LOKE_CLIENT_ID;
const clientSecret = process.env.LOKE_CLIENT_SECRET;
const out = { v5: {}, v6: {} };

async function json(response) {
  const text = Buffer.isBuffer(response.body) ? response.body.toString("utf8") : await response.text();
  return JSON.parse(text);
}

// openid-client 5: Issuer.discover + client.grant + client.requestResource
const issuer = await Issuer.discover(issuerUrl);
out.v5.issuer = issuer.issuer;
out.v5.token_endpoint = issuer.metadata.token_endpoint;
for (const method of ["client_secret_basic", "client_secret_post"]) {
  const client = new issuer.Client({ client_id: clientId, client_secret: clientSecret, token_endpoint_auth_method: method });
  const tokens = await client.grant({ grant_type: "client_credentials" });
  const orgs = await client.requestResource(`${apiBase}/organizations`, tokens.access_token);
  const organizations = JSON.parse(orgs.body.toString("utf8"));
  const customers = await client.requestResource(`${apiBase}/organizations/${organizations[0].id}/customers`, tokens.access_token);
  out.v5[method] = {
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    organizations: organizations.map((o) => o.id),
    customers_status: customers.statusCode,
    customers: JSON.parse(customers.body.toString("utf8")).length,
  };
}
let wrong = null;
try {
  const client = new issuer.Client({ client_id: clientId, client_secret: "not-the-secret" });
  await client.grant({ grant_type: "client_credentials" });
} catch (error) {
  wrong = { name: error.name, error: error.error ?? null };
}
out.v5.wrong_secret = wrong;

// openid-client 6: discovery (strict issuer check) + clientCredentialsGrant + fetchProtectedResource
const insecure = new URL(issuerUrl).protocol === "http:";
const options = insecure ? { execute: [v6.allowInsecureRequests] } : undefined;
for (const [method, auth] of [["client_secret_basic", v6.ClientSecretBasic(clientSecret)], ["client_secret_post", v6.ClientSecretPost(clientSecret)]]) {
  const config = await v6.discovery(new URL(issuerUrl), clientId, undefined, auth, options);
  const tokens = await v6.clientCredentialsGrant(config);
  const orgs = await v6.fetchProtectedResource(config, tokens.access_token, new URL(`${apiBase}/organizations`), "GET");
  const organizations = await json(orgs);
  const customers = await v6.fetchProtectedResource(config, tokens.access_token, new URL(`${apiBase}/organizations/${organizations[0].id}/customers`), "GET");
  out.v6[method] = {
    issuer: config.serverMetadata().issuer,
    token_type: tokens.token_type,
    organizations: organizations.map((o) => o.id),
    customers_status: customers.status,
    customers: (await json(customers)).length,
  };
}
process.stdout.write(JSON.stringify(out) + "\n");

export * from "./apps";
export * from "./audit";
export * from "./commands";
export * from "./events";
export * from "./hosts";
export * from "./templates";
export * from "./tokens";
export * from "./users";
export * from "./oidc-identities";
export * from "./webhooks";
export * from "./dependencies";
export * from "./notifications";
export * from "./osv-cache";
export * from "./vulnerabilities";
// ---- gateway
export * from "./gateway-shares";
// ---- end gateway

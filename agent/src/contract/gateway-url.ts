// Where a person opens an app behind its host's gateway (no dependencies: the browser bundle uses it).

export function gatewayUrl(app: string, gw: { domain: string; httpsPort: number }): string {
  return `https://${app}.${gw.domain}${gw.httpsPort === 443 ? "" : `:${gw.httpsPort}`}/`;
}

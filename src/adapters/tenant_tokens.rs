//! Graph tokens per tenant, for a multi-tenant bot: a call is acted on with a token of the
//! call's own tenant (the incoming notification token's verified `tid`), as Microsoft's
//! samples do (reference §5.1–§5.2: the SDK "passes `tid` on as the tenant for outbound
//! calls"; the sample "acquires the token per tenant taken from the inbound notification").
//! Graph answers 403 `7504` to a token of another tenant.
//!
//! [`TenantTokens`] holds one [`GraphTokenCache`] per tenant. The configured tenant's cache
//! is built (and prefetched) at start-up and serves requests with no tenant. Another
//! tenant's cache is created on its first call, with the configured token URL's tenant path
//! segment (`…/{tenant}/oauth2/v2.0/token`) replaced by that tenant, so the first call from
//! a new tenant pays for one token request. A token URL without the configured tenant as a
//! path segment cannot address other tenants: every call then uses the configured one.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::graph_client::{AccessTokenSource, BoxFuture};
use super::graph_token::{ClientCredentialsConfig, GraphTokenCache};
use crate::call::GraphApiError;

/// One client-credentials token cache per tenant; the configured tenant's is the default.
#[derive(Debug)]
pub struct TenantTokens {
    tenant: String,
    default: GraphTokenCache,
    http: reqwest::Client,
    others: Mutex<HashMap<String, GraphTokenCache>>,
}

impl TenantTokens {
    /// Tokens for `tenant` (the configured one) from `default`, whose configuration (token
    /// URL, credentials, scope, margins) is reused for other tenants, with `http`.
    pub fn new(tenant: &str, default: GraphTokenCache, http: reqwest::Client) -> Self {
        Self {
            tenant: tenant.to_owned(),
            default,
            http,
            others: Mutex::new(HashMap::new()),
        }
    }

    /// The configured tenant's cache.
    pub fn default_cache(&self) -> &GraphTokenCache {
        &self.default
    }

    /// The cache used for `tenant` (`None`, the configured tenant, or a tenant the token URL
    /// cannot address: the default one). Creates it on first use.
    pub fn cache_for(&self, tenant: Option<&str>) -> GraphTokenCache {
        let Some(tenant) = tenant.filter(|t| !t.eq_ignore_ascii_case(&self.tenant)) else {
            return self.default.clone();
        };
        let Some(url) = token_url_for(&self.default.config().token_url, &self.tenant, tenant)
        else {
            return self.default.clone();
        };
        let key = tenant.to_ascii_lowercase();
        let mut others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        others
            .entry(key)
            .or_insert_with(|| {
                let config = ClientCredentialsConfig {
                    token_url: url,
                    ..self.default.config().clone()
                };
                GraphTokenCache::new(config, self.http.clone())
            })
            .clone()
    }
}

impl AccessTokenSource for TenantTokens {
    fn token_rejected(&self, tenant: Option<&str>, token: &str) {
        self.cache_for(tenant).token_rejected(None, token);
    }

    fn access_token(&self) -> BoxFuture<'_, Result<String, GraphApiError>> {
        self.default.access_token()
    }

    fn access_token_for<'a>(
        &'a self,
        tenant: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, GraphApiError>> {
        let cache = self.cache_for(tenant);
        Box::pin(async move { cache.access_token().await })
    }
}

/// `url` with its path segment equal to `configured` (case-insensitive) replaced by
/// `tenant`; `None` when no segment names the configured tenant or `tenant` is not a plain
/// path segment.
pub fn token_url_for(url: &str, configured: &str, tenant: &str) -> Option<String> {
    if tenant.is_empty()
        || !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return None;
    }
    let mut parsed = url::Url::parse(url).ok()?;
    let segments: Vec<String> = parsed.path_segments()?.map(str::to_owned).collect();
    let at = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case(configured))?;
    let mut path = parsed.path_segments_mut().ok()?;
    path.clear();
    for (i, s) in segments.iter().enumerate() {
        path.push(if i == at { tenant } else { s });
    }
    drop(path);
    Some(parsed.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_url_names_the_calls_tenant() {
        let url = "https://login.microsoftonline.com/tenant-a/oauth2/v2.0/token";
        assert_eq!(
            token_url_for(url, "tenant-a", "tenant-b").as_deref(),
            Some("https://login.microsoftonline.com/tenant-b/oauth2/v2.0/token")
        );
        assert_eq!(
            token_url_for(url, "TENANT-A", "b.onmicrosoft.com").as_deref(),
            Some("https://login.microsoftonline.com/b.onmicrosoft.com/oauth2/v2.0/token")
        );
        // No segment names the configured tenant; tenants that are not plain segments.
        assert_eq!(token_url_for("https://idp/token", "tenant-a", "b"), None);
        assert_eq!(token_url_for(url, "tenant-a", "../x"), None);
        assert_eq!(token_url_for(url, "tenant-a", ""), None);
    }

    #[tokio::test]
    async fn caches_are_per_tenant_and_the_configured_one_is_the_default() {
        let http = reqwest::Client::new();
        let cfg = ClientCredentialsConfig::new(
            "https://127.0.0.1:1/tenant-a/oauth2/v2.0/token",
            "app",
            "secret",
        );
        let tokens = TenantTokens::new("tenant-a", GraphTokenCache::new(cfg, http.clone()), http);
        let url = |t: Option<&str>| tokens.cache_for(t).config().token_url.clone();
        assert_eq!(url(None), "https://127.0.0.1:1/tenant-a/oauth2/v2.0/token");
        assert_eq!(url(Some("Tenant-A")), url(None));
        assert_eq!(
            url(Some("tenant-b")),
            "https://127.0.0.1:1/tenant-b/oauth2/v2.0/token"
        );
        assert_eq!(tokens.others.lock().unwrap().len(), 1);
        tokens.cache_for(Some("TENANT-B"));
        assert_eq!(tokens.others.lock().unwrap().len(), 1);
    }
}

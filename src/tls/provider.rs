//! The crypto provider: *ring*'s algorithms, assembled here.
//!
//! rustls 0.23.48 deprecated `rustls::crypto::ring::default_provider()` (ring has no
//! post-quantum key exchange); every configuration this crate made went through it,
//! so a program that depended on us warned at every build. ring stays our choice
//! (it cross-compiles to the boards embedded users deploy to with a C compiler
//! alone), so the provider is put together from ring's public parts: its cipher
//! suites and key-exchange groups as rustls exports them, the signature
//! verification algorithms of rustls-webpki's ring backend (the same table rustls
//! uses), private keys loaded by rustls' ring signer, and ring's system random
//! generator. A program that wants another provider (aws-lc-rs for post-quantum key
//! exchange) installs it as the process default before building configurations:
//! [`provider`] returns that one.

use std::sync::Arc;

use rustls::crypto::ring as rr;
use rustls::crypto::{
    CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use rustls::{Error, SignatureScheme};
use webpki::ring as alg;

/// The process default provider if the program installed one
/// ([`CryptoProvider::install_default`]); otherwise *ring*'s.
pub fn provider() -> Arc<CryptoProvider> {
    if let Some(p) = CryptoProvider::get_default() {
        return p.clone();
    }
    Arc::new(ring_provider())
}

/// *ring*'s cipher suites, key exchange, signature algorithms, key loading and
/// randomness, with rustls' defaults for each.
pub fn ring_provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: rr::DEFAULT_CIPHER_SUITES.to_vec(),
        kx_groups: rr::DEFAULT_KX_GROUPS.to_vec(),
        signature_verification_algorithms: SIGNATURES,
        secure_random: &Ring,
        key_provider: &Ring,
    }
}

/// Randomness and key loading by *ring*.
#[derive(Debug)]
struct Ring;

impl SecureRandom for Ring {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        use ring::rand::SecureRandom as _;
        ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| GetRandomFailed)
    }
}

impl KeyProvider for Ring {
    fn load_private_key(&self, key: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, Error> {
        rr::sign::any_supported_type(&key)
    }
}

/// The certificate signatures a peer may use, and which algorithm checks each TLS
/// signature scheme (for TLS 1.2 the curve is not fixed by the scheme, so ECDSA
/// schemes accept either curve).
static SIGNATURES: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        alg::ECDSA_P256_SHA256,
        alg::ECDSA_P256_SHA384,
        alg::ECDSA_P384_SHA256,
        alg::ECDSA_P384_SHA384,
        alg::ED25519,
        alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        alg::RSA_PKCS1_2048_8192_SHA256,
        alg::RSA_PKCS1_2048_8192_SHA384,
        alg::RSA_PKCS1_2048_8192_SHA512,
        alg::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
        ),
        (SignatureScheme::ED25519, &[alg::ED25519]),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[alg::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[alg::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[alg::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The assembled provider is rustls' own ring provider, field by field (compared
    /// with the deprecated constructor here only, so a rustls that changes its
    /// defaults fails this test instead of drifting silently).
    #[test]
    fn the_provider_is_rustls_own_ring_provider() {
        #[allow(deprecated)]
        let theirs = rr::default_provider();
        let ours = ring_provider();
        let show = |p: &CryptoProvider| {
            format!(
                "{:?} {:?} {:?}",
                p.cipher_suites, p.kx_groups, p.signature_verification_algorithms
            )
        };
        assert_eq!(show(&ours), show(&theirs));
        let mut b = [0u8; 32];
        ours.secure_random.fill(&mut b).unwrap();
        assert_ne!(b, [0u8; 32]);
    }
}

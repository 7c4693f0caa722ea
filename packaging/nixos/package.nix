# mailzone built from this repository with nixpkgs' Rust tooling:
#   pkgs.callPackage ./packaging/nixos/package.nix { }
# The workspace needs Rust >= 1.94 (rust-version in Cargo.toml): use a nixpkgs whose
# rustPlatform is at least that recent.
{
  lib,
  rustPlatform,
}:

rustPlatform.buildRustPackage {
  pname = "mailzone";
  version = "0.1.0";

  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ../../Cargo.toml
      ../../Cargo.lock
      ../../crates
      ../../bench
      ../../examples
      ../../docs
    ];
  };

  cargoLock.lockFile = ../../Cargo.lock;

  # Only the binary; the test suite needs Knot, BIND, PostgreSQL and more (scripts/test).
  cargoBuildFlags = [ "--package" "mailzone" ];
  doCheck = false;

  meta = {
    description = "Every DNS record a mail domain needs: generated, published and checked";
    license = lib.licenses.asl20;
    mainProgram = "mailzone";
    platforms = lib.platforms.linux;
  };
}

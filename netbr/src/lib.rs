//! netbr: see ../../README.md and ../../shared design for the contract.

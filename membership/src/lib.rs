//! membership core

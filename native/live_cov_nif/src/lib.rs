mod bump;
mod error;
mod json;
mod table_nif;

fn load(env: rustler::Env, info: rustler::Term) -> bool {
    live_cov_core::table::TABLE.set_shards(info.decode::<usize>().unwrap_or(1));
    bump::set_ok_term(rustler::types::atom::ok().to_term(env).as_c_arg());
    true
}

rustler::init!("Elixir.LiveCov.Native", load = load);

mod bump;
mod error;
mod json;
mod snapshot_nif;
mod table_nif;

fn load(env: rustler::Env, info: rustler::Term) -> bool {
    live_cov_core::table::TABLE.set_shards(info.decode::<usize>().unwrap_or(1));
    bump::set_ok_term(rustler::types::atom::ok().to_term(env).as_c_arg());
    // SAFETY: called with the load call's own environment.
    unsafe { bump::check_small_layout(env.as_c_arg()) };
    true
}

rustler::init!("Elixir.LiveCov.Native", load = load);

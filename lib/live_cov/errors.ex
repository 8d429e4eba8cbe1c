defmodule LiveCov.Errors do
  @moduledoc """
  Every error kind LiveCov returns, as `{:error, {kind, message}}`: what it means and the
  HTTP status the agent and the gateway answer it with. The message always names the thing
  and the fix; the kind is what code matches on.

      iex> LiveCov.Errors.status(:unauthorized)
      401
      iex> LiveCov.Errors.error(:invalid_option, "mode: :fast is not a coverage mode")
      {:error, {:invalid_option, "mode: :fast is not a coverage mode"}}

  `:cover`-shaped errors of `LiveCov.Cover` (`{:not_cover_compiled, m}`,
  `{:cant_open_file, file, reason}`, `{:duplicate, m}`, `:non_existing`) keep `:cover`'s
  shapes and are listed here too.
  """

  # kind => {HTTP status, meaning}
  @kinds %{
    # Requests and options (the caller can fix them).
    bad_request: {400, "the HTTP request is malformed (path, query or encoding)"},
    malformed_json: {400, "a request body is not valid JSON"},
    invalid_body: {400, "a request body is JSON of the wrong shape"},
    invalid_option: {400, "an option has an unknown name or a wrong value"},
    invalid_parameter: {400, "a query or body parameter has a wrong value"},
    unknown_parameter: {400, "a query or body parameter is not one the route knows"},
    bad_target: {400, "what to instrument is not an application, module, beam or directory"},
    invalid_url: {400, "a URL is not an http(s) URL"},
    invalid_agent_config: {400, "a setting of the agent is wrong"},
    invalid_gateway_config: {400, "a setting of the gateway is wrong"},
    invalid_module_data: {400, "module line data given to a report is of the wrong shape"},
    invalid_stats: {400, "a report was asked for something that is not LiveCov.Stats"},
    invalid_export: {400, "a file given as a LiveCov export is not one"},
    unknown_format: {404, "a report format name is not known"},
    unknown_application: {404, "an application name is not known on the node"},
    unknown_service: {404, "the gateway has no service of that name"},
    not_found: {404, "the route, run, build or file asked for does not exist"},
    method_not_allowed: {405, "the route does not take that HTTP method"},
    body_too_large: {413, "a request body is over the configured limit"},
    unsupported_media_type: {415, "a request body has a content type the route does not read"},
    unauthorized: {401, "the bearer token is missing or wrong"},
    refused_application: {403, "the agent refuses to instrument that application"},
    # State of this node.
    not_main_node: {409, "this node is covered by another node, which does this"},
    conflict: {409, "the change conflicts with one under way"},
    already_started: {409, "the thing is running already"},
    already_imported: {409, "the same coverage data was imported before"},
    already_loaded: {409, "the module is loaded already"},
    not_running: {409, "the thing is not running"},
    not_started: {409, "the thing was never started"},
    not_instrumented: {409, "the module is not instrumented (any more)"},
    nothing_instrumented: {409, "nothing is instrumented, so there is nothing to measure"},
    not_in_snapshot: {404, "the snapshot has no data for that module"},
    not_cover_compiled: {404, "(cover's shape) the module is not instrumented"},
    non_existing: {404, "(cover's shape) the module cannot be found"},
    duplicate: {409, "(cover's shape) the same module was given twice"},
    old_code_in_use: {409, "an older version of the module still runs; nothing is killed"},
    slot_taken: {409, "a counter slot is in use by another module"},
    node_busy: {409, "the node is covered by another main node right now"},
    other_main: {409, "the node is covered by another main node"},
    # What cannot be instrumented (reported per module, the module left as it was).
    no_beam: {422, "no beam file for the module (preloaded, or deleted)"},
    no_debug_info: {422, "the beam has no debug_info to rebuild the code from"},
    no_abstract_code: {422, "the beam's debug_info has no abstract code"},
    encrypted_debug_info: {422, "the debug_info is encrypted and no key is known"},
    encrypted_abstract_code: {422, "the abstract code is encrypted and no key is known"},
    missing_backend: {422, "the debug_info's backend (e.g. Elixir's) is not loaded"},
    no_file_attribute: {422, "the abstract code has no -file attribute"},
    bad_forms: {422, "the abstract code is malformed and cannot be rewritten"},
    bad_beam: {422, "the file is not a beam"},
    sticky: {422, "the module is in a sticky directory (kernel, stdlib, compiler)"},
    nif_module: {422, "the module loads a NIF; reloading it would unload the library"},
    live_cov_module: {422, "LiveCov never instruments itself"},
    compile_failed: {500, "the instrumented module did not compile (a LiveCov bug)"},
    load_failed: {500, "the instrumented or original module did not load"},
    sites_changed: {409, "the module's beam no longer gives the recorded bump sites"},
    no_original: {409, "the original beam of a module is not recorded"},
    crashed: {500, "instrumenting one target crashed; the others went on"},
    # Coverage data read from outside.
    bad_snapshot: {422, "a LiveCov snapshot is damaged or of the wrong shape"},
    not_a_snapshot: {422, "the data is not a LiveCov snapshot"},
    bad_coverdata: {422, "a .coverdata file is damaged or of the wrong shape"},
    truncated: {422, "the data ends before its last record"},
    trailing_data: {422, "bytes follow the end of the data"},
    checksum_mismatch: {422, "the data's checksum does not match: it was damaged"},
    count_mismatch: {422, "a snapshot's counts do not match its sites"},
    unsupported_version: {422, "the data is of a format version this LiveCov does not read"},
    empty: {422, "the file or data is empty"},
    bad_baseline: {422, "a baseline snapshot does not match the data it is compared with"},
    cannot_merge: {422, "these inputs cannot be merged (e.g. a JSON export)"},
    version_mismatch: {422, "another node runs a different LiveCov version"},
    # Files.
    cant_open_file: {500, "(cover's shape) a file cannot be opened"},
    cant_read: {500, "a file cannot be read"},
    cant_write: {500, "a file cannot be written"},
    write_failed: {500, "a file cannot be written"},
    mkdir_failed: {500, "a directory cannot be created"},
    render_failed: {500, "a report format failed to render"},
    # Nodes, the network and the runtime.
    bad_node: {400, "a node name is not a node name"},
    not_distributed: {409, "this node is not distributed; start it with a name"},
    distribution_failed: {500, "distribution could not be started"},
    nodedown: {503, "a covered node went down"},
    unreachable: {503, "a node or an agent cannot be reached"},
    remote_failed: {502, "a call on another node failed"},
    node_error: {502, "another node answered with an error"},
    agent_error: {502, "an agent answered the gateway with an error"},
    live_cov_not_on_path: {422, "LiveCov's code is not on the other node's code path"},
    refused: {502, "the endpoint refused what was published"},
    timeout: {503, "the answer took longer than allowed"},
    unavailable: {503, "the service cannot answer right now"},
    agent_stopping: {503, "the agent is stopping"},
    shutdown: {503, "the server is shutting down"},
    nif_not_loaded: {503, "LiveCov's NIF library is not loaded: build it with mix compile"},
    native_unavailable:
      {501, "backend: :native needs a runtime with native line counters (OTP 27+, JIT)"},
    not_native: {409, "the counter slot is not fed by the runtime's line counters"},
    bad_cover_id: {409, "the runtime's line counters do not match the instrumented build"},
    native_coverage_in_use:
      {409, "the module is loaded with line coverage another tool reads: LiveCov leaves it"},
    native_counters_gone:
      {409, "the instrumented code was replaced by somebody else: its line counters are gone"},
    inets_unavailable: {503, "OTP's inets application is not available"},
    ssl_unavailable: {503, "OTP's ssl application is not available for an https URL"},
    listen_failed: {500, "the server could not listen on its address"},
    start_failed: {500, "a server did not start"},
    agent_start_failed: {500, "the agent did not start"},
    internal_error: {500, "a bug: the message says where"},
    # From the NIF (Rust): the counter table and JSON.
    unknown_slot: {409, "a counter slot is not registered (stopped or never instrumented)"},
    bad_slot: {400, "a counter slot id is out of range"},
    table_full: {503, "the counter table has used all its slot ids; restart the node"},
    too_many_sites: {422, "a module has more bump sites than a slot can hold"},
    bad_counts: {422, "counts do not fit the slot they are given to (another build)"},
    bad_input: {400, "a NIF was given data of the wrong shape"},
    malformed: {422, "binary data given to a NIF is damaged"},
    invalid_json: {400, "a text is not valid JSON"},
    unencodable: {500, "a term cannot be encoded as JSON"}
  }

  @typedoc "An error kind of the catalogue."
  @type kind :: atom

  @doc "Every kind: `%{kind => {http_status, meaning}}`."
  @spec kinds() :: %{kind => {100..599, String.t()}}
  def kinds, do: @kinds

  @doc "True for a kind of the catalogue."
  @spec known?(atom) :: boolean
  def known?(kind), do: is_map_key(@kinds, kind)

  @doc "The HTTP status of `kind` (500 for a kind the catalogue does not list)."
  @spec status(atom) :: 100..599
  def status(kind) do
    case @kinds do
      %{^kind => {status, _}} -> status
      _ -> 500
    end
  end

  @doc "What `kind` means."
  @spec meaning(atom) :: String.t() | nil
  def meaning(kind) do
    case @kinds do
      %{^kind => {_, meaning}} -> meaning
      _ -> nil
    end
  end

  @doc """
  `{:error, {kind, message}}`. Raises `ArgumentError` for a kind the catalogue does not list
  or a message that is not a non-empty string, so a new kind cannot go unlisted.
  """
  @spec error(kind, String.t()) :: {:error, {kind, String.t()}}
  def error(kind, message) when is_binary(message) and message != "" do
    if known?(kind),
      do: {:error, {kind, message}},
      else: raise(ArgumentError, "#{inspect(kind)} is not an error kind of LiveCov.Errors")
  end

  def error(kind, message),
    do:
      raise(ArgumentError, "error message for #{inspect(kind)} must be text: #{inspect(message)}")
end

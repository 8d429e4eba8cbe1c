defmodule LiveCov.Native do
  # NIF stubs only. The documented API is LiveCov.Table; instrumented code calls bump/2.
  @moduledoc false

  @on_load :load_nif

  @doc false
  def load_nif do
    path = library_path()

    case :erlang.load_nif(String.to_charlist(path), :erlang.system_info(:schedulers)) do
      :ok ->
        :persistent_term.erase({__MODULE__, :load_error})
        :ok

      {:error, {_reason, text}} ->
        # Keep the module loaded so every call can explain what is wrong.
        :persistent_term.put({__MODULE__, :load_error}, {path, to_string(text)})
        :ok
    end
  end

  @doc false
  def library_path do
    priv =
      case :code.priv_dir(:live_cov) do
        {:error, _} -> Path.expand("../../priv", __DIR__)
        dir -> List.to_string(dir)
      end

    Path.join([priv, "native", "live_cov_nif"])
  end

  @doc false
  def load_error, do: :persistent_term.get({__MODULE__, :load_error}, nil)

  # Raises LiveCov.NativeError. Through :erlang.nif_error/1, which the type checkers of
  # Elixir 1.18+ (and Dialyzer) take to return any term, as the loaded NIF does.
  defp nif_error do
    {path, text} = load_error() || {library_path(), "not loaded"}

    :erlang.nif_error(
      LiveCov.NativeError.exception(
        message:
          "LiveCov's NIF library #{path}.so could not be loaded (#{text}). " <>
            "Build it with `mix compile` in the live_cov project (needs cargo), " <>
            "or check that the file exists and matches this OTP version."
      )
    )
  end

  def bump(_slot, _index), do: nif_error()
  def bump_rustler(_slot, _index), do: nif_error()
  def register(_nsites), do: nif_error()
  def register_at(_slot, _nsites), do: nif_error()
  def claim(_slot, _nsites), do: nif_error()
  def register_from(_min, _nsites), do: nif_error()
  def unregister(_slot), do: nif_error()
  def read(_slot), do: nif_error()
  def take(_slot), do: nif_error()
  def add(_slot, _counts), do: nif_error()
  def reset(_slot), do: nif_error()
  def reset_all(), do: nif_error()
  def snapshot(_take), do: nif_error()
  def snapshot_dirty(_take), do: nif_error()
  def dirty_threshold(), do: nif_error()
  def info(), do: nif_error()
  def native_attach(_slot, _module, _md5, _seen), do: nif_error()
  def native_detach(_slot), do: nif_error()
  def native_slots(), do: nif_error()
  def native_source(_slot), do: nif_error()
  def native_harvest(_slot, _pairs), do: nif_error()
  def debug_panic(_message), do: nif_error()
  def json_encode(_term, _pretty), do: nif_error()
  def json_decode(_binary), do: nif_error()
  # Snapshots (native/live_cov_nif/src/snapshot_nif.rs)
  def snapshot_metas(_list), do: nif_error()
  def snapshot_encode(_origins, _metas, _counters), do: nif_error()
  def snapshot_decode(_binary), do: nif_error()
  def snapshot_merge_files(_binaries), do: nif_error()
  def counts_add(_a, _b), do: nif_error()
  def counts_add_dirty(_a, _b), do: nif_error()
  def counts_sub(_after, _before), do: nif_error()
  def counts_sub_dirty(_after, _before), do: nif_error()
end

defmodule LiveCov.NativeError do
  @moduledoc "Raised when LiveCov's NIF library is missing or cannot be loaded."
  defexception [:message]
end

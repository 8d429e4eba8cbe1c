defmodule LiveCov.Instrument.Forms do
  @moduledoc false
  # Reads the abstract code of a compiled module, the way OTP 25's `cover` does
  # before it instruments a module.
  #
  # `fetch/1` takes a module name or the path of a `.beam` file, reads the beam,
  # asks `:beam_lib` for the `abstract_code` chunk (which goes through the
  # module's debug_info backend, so Elixir modules work through `:elixir_erl`),
  # interprets `-file` attributes, and collects what recompiling needs: the
  # main source file, the `compile_info` source and the compile options cover
  # keeps (`{:i, _}`, `{:d, _}`, `{:d, _, _}`, `:export_all`, `:tuple_calls`,
  # `{:feature, _, :enable | :disable}`), and the beam's MD5.
  #
  # Modules that must not be instrumented are refused with a reason:
  #
  # | kind | meaning |
  # |---|---|
  # | `:no_beam` | unknown module, no beam file, preloaded or already cover-compiled |
  # | `:bad_beam` | the file is not a valid beam |
  # | `:no_debug_info` | compiled without debug_info |
  # | `:encrypted_debug_info` | debug_info is encrypted and no key is available |
  # | `:missing_backend` | the debug_info backend module (e.g. `:elixir_erl`) is not loaded |
  # | `:no_file_attribute` | the abstract code has no `-file` attribute |
  # | `:sticky` | the module lives in a sticky directory (kernel, stdlib, ...) |
  # | `:nif_module` | the module loads a NIF; reloading it would unload the library |
  # | `:live_cov_module` | LiveCov never instruments itself |

  @enforce_keys [:module, :binary, :forms, :main_file]
  defstruct module: nil,
            beam_path: nil,
            binary: nil,
            forms: [],
            main_file: nil,
            source: nil,
            compile_options: [],
            md5: nil

  @type t :: %__MODULE__{
          module: module(),
          beam_path: charlist() | nil,
          binary: binary(),
          forms: [tuple()],
          main_file: charlist(),
          source: charlist() | nil,
          compile_options: list(),
          md5: binary()
        }

  @type error :: {:error, {atom(), String.t()}}

  @doc """
  Fetches the abstract code of `module_or_path` (a module atom, or a path to a
  `.beam` file as a string or charlist).

  Returns `{:ok, %LiveCov.Instrument.Forms{}}` or `{:error, {kind, message}}`,
  see the module documentation for the kinds.
  """
  @spec fetch(module() | String.t() | charlist()) :: {:ok, t()} | error()
  def fetch(module) when is_atom(module) do
    with :ok <- check_not_live_cov(module),
         {:ok, path} <- which(module),
         {:ok, binary} <- read_beam(path, module),
         {:ok, forms} <- from_binary(binary, path) do
      if forms.module == module do
        {:ok, forms}
      else
        {:error,
         {:bad_beam,
          "#{path} (found by :code.which(#{inspect(module)})) contains module " <>
            "#{inspect(forms.module)}; fix the code path so it finds the right beam"}}
      end
    end
  end

  def fetch(path) when is_binary(path), do: fetch(String.to_charlist(path))

  def fetch(path) when is_list(path) do
    if :io_lib.char_list(path) do
      path = :filename.absname(path)

      with {:ok, binary} <- read_beam(path, nil) do
        from_binary(binary, path)
      end
    else
      {:error, {:no_beam, "#{inspect(path)} is neither a module name nor a beam file path"}}
    end
  end

  def fetch(other) do
    {:error, {:no_beam, "#{inspect(other)} is neither a module name nor a beam file path"}}
  end

  @doc """
  Like `fetch/1` but from a beam binary already in memory. `beam_path` is
  recorded in the result (it may be `nil`).
  """
  @spec from_binary(binary(), charlist() | nil) :: {:ok, t()} | error()
  def from_binary(binary, beam_path \\ nil) when is_binary(binary) do
    label = if beam_path, do: List.to_string(beam_path), else: "beam binary"

    with {:ok, module} <- beam_module(binary, label),
         :ok <- check_not_live_cov(module),
         :ok <- check_not_sticky(module),
         {:ok, code} <- abstract_code(binary, module, label),
         forms = :epp.interpret_file_attribute(code),
         {:ok, main_file} <- main_file(forms, module, label),
         :ok <- check_not_nif(forms, binary, module) do
      info = compile_info(binary)

      {:ok,
       %__MODULE__{
         module: module,
         beam_path: beam_path,
         binary: binary,
         forms: forms,
         main_file: main_file,
         source: source(info),
         compile_options: info |> Keyword.get(:options, []) |> filter_options(),
         md5: md5(binary)
       }}
    end
  end

  @doc """
  Keeps the compile options cover keeps when it recompiles a module: include
  dirs, macro definitions, `export_all`, `tuple_calls` and feature switches.
  """
  @spec filter_options(list()) :: list()
  def filter_options(options) when is_list(options) do
    Enum.filter(options, fn
      {:i, dir} when is_list(dir) -> true
      {:d, _macro} -> true
      {:d, _macro, _value} -> true
      :export_all -> true
      :tuple_calls -> true
      {:feature, _, :enable} -> true
      {:feature, _, :disable} -> true
      _ -> false
    end)
  end

  def filter_options(_), do: []

  @doc "True for modules LiveCov never instruments: its own."
  @spec live_cov_module?(module()) :: boolean()
  def live_cov_module?(module) when is_atom(module) do
    name = Atom.to_string(module)

    name in ["LiveCov", "Elixir.LiveCov"] or String.starts_with?(name, "Elixir.LiveCov.") or
      String.starts_with?(name, "live_cov")
  end

  ## Steps

  defp check_not_live_cov(module) do
    if live_cov_module?(module) do
      {:error,
       {:live_cov_module,
        "#{inspect(module)} is part of LiveCov; LiveCov never instruments itself, " <>
          "leave it out of the module list"}}
    else
      :ok
    end
  end

  defp which(module) do
    case :code.which(module) do
      :non_existing ->
        {:error,
         {:no_beam,
          "module #{inspect(module)} is not loaded and no beam for it is in the code path; " <>
            "compile it or add its ebin directory to the code path"}}

      :preloaded ->
        {:error,
         {:no_beam,
          "module #{inspect(module)} is preloaded (part of the runtime system, " <>
            "it has no beam file) and cannot be instrumented"}}

      :cover_compiled ->
        {:error,
         {:no_beam,
          "module #{inspect(module)} is cover-compiled by OTP's cover; " <>
            "run :cover.reset/stop for it (or stop cover) before instrumenting it with LiveCov"}}

      [] ->
        {:error,
         {:no_beam,
          "module #{inspect(module)} was loaded from memory and has no beam file; " <>
            "write it to disk (e.g. mix compile) or pass the beam path"}}

      path when is_list(path) ->
        {:ok, path}
    end
  end

  defp read_beam(path, module) do
    case File.read(path) do
      {:ok, binary} ->
        {:ok, binary}

      {:error, reason} ->
        what = if module, do: "the beam of #{inspect(module)} at ", else: ""

        {:error,
         {:no_beam,
          "cannot read #{what}#{path}: #{:file.format_error(reason)}; " <>
            "check the path or recompile the module"}}
    end
  end

  defp beam_module(binary, label) do
    case :beam_lib.info(binary) do
      list when is_list(list) ->
        {:ok, Keyword.fetch!(list, :module)}

      {:error, :beam_lib, reason} ->
        {:error,
         {:bad_beam,
          "#{label} is not a valid beam file (#{format_beam_lib(reason)}); recompile the module"}}
    end
  rescue
    _ -> {:error, {:bad_beam, "#{label} is not a valid beam file; recompile the module"}}
  end

  defp check_not_sticky(module) do
    if :code.is_sticky(module) do
      {:error,
       {:sticky,
        "module #{inspect(module)} is in a sticky directory (kernel, stdlib, compiler, ...) " <>
          "and cannot be reloaded; leave it out or start the VM with -nostick"}}
    else
      :ok
    end
  end

  defp abstract_code(binary, module, label) do
    no_debug_info =
      {:error,
       {:no_debug_info,
        "#{inspect(module)} (#{label}) was compiled without debug_info; " <>
          "recompile with debug_info (erlc +debug_info, or `@compile :debug_info` / " <>
          "`debug_info: true` in Elixir)"}}

    case :beam_lib.chunks(binary, [:abstract_code]) do
      {:ok, {^module, [abstract_code: {:raw_abstract_v1, code}]}} ->
        {:ok, code}

      {:ok, {^module, [abstract_code: _no_or_old_abstract_code]}} ->
        no_debug_info

      {:error, :beam_lib, {:key_missing_or_invalid, _, _}} ->
        {:error,
         {:encrypted_debug_info,
          "#{inspect(module)} (#{label}) has encrypted debug_info and no valid key is " <>
            "available; provide the key with :beam_lib.crypto_key_fun/1 or a .erlang.crypt " <>
            "file, or recompile without encryption"}}

      {:error, :beam_lib, {:missing_backend, _, backend}} ->
        {:error,
         {:missing_backend,
          "the debug_info of #{inspect(module)} (#{label}) needs backend " <>
            "#{inspect(backend)}, which is not available; load its application " <>
            "(for Elixir modules: elixir)"}}

      {:error, :beam_lib, reason} ->
        {:error,
         {:bad_beam,
          "cannot read the abstract code of #{inspect(module)} from #{label} " <>
            "(#{format_beam_lib(reason)}); recompile the module"}}
    end
  rescue
    e ->
      {:error,
       {:no_debug_info,
        "the debug_info backend failed for #{inspect(module)} (#{label}): " <>
          "#{Exception.message(e)}; recompile with debug_info"}}
  end

  defp main_file(forms, module, label) do
    case LiveCov.Instrument.Munge.main_file(forms) do
      {:ok, file} ->
        {:ok, file}

      :error ->
        {:error,
         {:no_file_attribute,
          "the abstract code of #{inspect(module)} (#{label}) has no -file attribute; " <>
            "recompile it from source with debug_info"}}
    end
  end

  defp check_not_nif(forms, binary, module) do
    cond do
      Enum.any?(forms, &match?({:attribute, _, :nifs, _}, &1)) ->
        nif_error(module, "declares -nifs")

      calls_load_nif?(binary) ->
        nif_error(module, "calls erlang:load_nif/2")

      true ->
        :ok
    end
  end

  defp nif_error(module, why) do
    {:error,
     {:nif_module,
      "#{inspect(module)} #{why}; reloading it would unload its native library, " <>
        "leave it out of the instrumented modules"}}
  end

  # The module's import table lists every remote function its code calls.
  defp calls_load_nif?(binary) do
    case :beam_lib.chunks(binary, [:imports]) do
      {:ok, {_module, [imports: imports]}} -> {:erlang, :load_nif, 2} in imports
      _ -> false
    end
  end

  defp compile_info(binary) do
    case :beam_lib.chunks(binary, [:compile_info]) do
      {:ok, {_module, [compile_info: info]}} when is_list(info) -> info
      _ -> []
    end
  rescue
    _ -> []
  end

  defp source(info) do
    case List.keyfind(info, :source, 0) do
      {:source, source} -> source
      nil -> nil
    end
  end

  defp md5(binary) do
    {:ok, {_module, md5}} = :beam_lib.md5(binary)
    md5
  end

  defp format_beam_lib(reason) do
    reason |> :beam_lib.format_error() |> IO.chardata_to_string()
  rescue
    _ -> inspect(reason)
  end
end

defmodule LiveCov.Instrument.Recipe do
  @moduledoc false
  # What recompiling a coverage-mode module needs (its compile info, the rewritten forms with
  # their placeholders, the compile options), kept as one compressed binary in its
  # `LiveCov.ModuleInfo` (`cache`), so reading module info from ETS stays cheap. Written
  # when the module is instrumented, read by the pruner.

  alias LiveCov.Instrument.Forms

  @doc "The recipe of `forms` rewritten as `munged`, compiled with `opts[:optimize]`."
  @spec encode(Forms.t(), [tuple], keyword) :: binary
  def encode(%Forms{} = forms, munged, opts \\ []) do
    compile_opts = Keyword.take(opts, [:optimize, :backend])

    :erlang.term_to_binary({%{forms | forms: [], binary: nil}, munged, compile_opts}, [
      :compressed
    ])
  end

  @doc "`{:ok, forms, munged, compile_opts}`, or `:error` for a binary that is not a recipe."
  @spec decode(binary) :: {:ok, Forms.t(), [tuple], keyword} | :error
  def decode(binary) when is_binary(binary) do
    case :erlang.binary_to_term(binary) do
      {%Forms{} = forms, munged, compile_opts} when is_list(munged) and is_list(compile_opts) ->
        {:ok, forms, munged, compile_opts}

      _ ->
        :error
    end
  rescue
    ArgumentError -> :error
  end
end

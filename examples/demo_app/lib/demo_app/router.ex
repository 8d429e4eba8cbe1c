defmodule DemoApp.Router do
  @moduledoc "The `:httpd` callback module: turns each request into a handler call."

  require Record
  Record.defrecordp(:mod, Record.extract(:mod, from_lib: "inets/include/httpd.hrl"))

  alias DemoApp.{Calc, Http, Store}

  @doc false
  # :httpd calls do/1 (a reserved word in Elixir) for every request.
  def unquote(:do)(request) do
    method = request |> mod(:method) |> List.to_string()

    %URI{path: path, query: query} =
      request |> mod(:request_uri) |> List.to_string() |> URI.parse()

    segments = String.split(path || "/", "/", trim: true)
    params = URI.decode_query(query || "")
    body = request |> mod(:entity_body) |> IO.iodata_to_binary()

    {status, payload} = route(method, segments, params, body)
    {:proceed, [response: Http.response(status, payload)]}
  end

  defp route("GET", ["health"], _params, _body), do: {200, %{status: "ok"}}

  defp route("GET", ["kv"], _params, _body), do: {200, %{keys: Store.keys()}}

  defp route("GET", ["kv", key], _params, _body) do
    case Store.get(key) do
      {:ok, value} -> {200, %{key: key, value: value}}
      :error -> Http.not_found("no key #{key}")
    end
  end

  defp route("PUT", ["kv", key], _params, value) do
    case Store.put(key, value) do
      :created -> {201, %{key: key, value: value}}
      :replaced -> {200, %{key: key, value: value}}
    end
  end

  defp route("DELETE", ["kv", key], _params, _body) do
    case Store.delete(key) do
      :ok -> {200, %{deleted: key}}
      :error -> Http.not_found("no key #{key}")
    end
  end

  defp route("GET", ["calc", op], params, _body) do
    with {:ok, a} <- Calc.parse_int(params["a"]),
         {:ok, b} <- Calc.parse_int(params["b"]),
         {:ok, result} <- Calc.apply_op(op, a, b) do
      {200, %{op: op, a: a, b: b, result: result}}
    else
      {:error, :not_an_integer} -> {400, %{error: "a and b must be integers"}}
      {:error, :unknown_op} -> Http.not_found("no operation #{op}")
      {:error, reason} -> {422, %{error: Atom.to_string(reason)}}
    end
  end

  defp route(method, segments, _params, _body) do
    if segments in [["health"], ["kv"]] or match?([_, _], segments) do
      {405, %{error: "method #{method} not allowed"}}
    else
      Http.not_found("no route /#{Enum.join(segments, "/")}")
    end
  end
end

%% Fixture of bench/hot_path.exs (not part of the library).
%%
%% The bench compiles this file twice under two module names: one copy is
%% instrumented by the tool under test, the other stays plain (the twin), and
%% the bump cost is the difference of the two timings.
%%
%% Each iteration of loop/2 runs 11 executable lines: the one line of the
%% recursive clause and the 10 lines of body/1, so it does 11 bumps. Keep
%% every line distinct and the recursive clause on one line: the bench derives
%% the expected counts from these forms.
-module(hot_path_bench).
-export([loop/2, body/1]).

loop(0, _X) -> ok;
loop(N, X) -> _ = body(X), loop(N - 1, X).

body(X0) ->
    X1 = X0 + 1,
    X2 = X1 + 1,
    X3 = X2 + 1,
    X4 = X3 + 1,
    X5 = X4 + 1,
    X6 = X5 + 1,
    X7 = X6 + 1,
    X8 = X7 + 1,
    X9 = X8 + 1,
    X9 + 1.

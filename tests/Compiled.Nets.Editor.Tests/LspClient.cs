using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace Compiled.Nets.Editor.Tests;

/// <summary>
/// A minimal LSP client over a server's stdin/stdout (Content-Length framing, JSON-RPC 2.0): requests with ids,
/// notifications, and answers to the server's own requests (configuration, registration, progress).
/// </summary>
internal sealed class LspClient : IDisposable
{
    private readonly Process _server;
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonNode?>> _pending = new();
    private readonly Func<string, JsonNode?, JsonNode?> _answer;
    private readonly StringBuilder _log = new();
    private readonly object _write = new();
    private int _nextId;

    /// <summary>What the server logged (stderr and window/logMessage), for failure messages.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    public LspClient(string executable, string arguments, string workingDirectory, Func<string, JsonNode?, JsonNode?> answerServerRequest)
    {
        _answer = answerServerRequest;
        _server = Process.Start(new ProcessStartInfo(executable, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        }.WithoutMSBuildHostVariables()) ?? throw new InvalidOperationException($"could not start {executable}");
        _server.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _server.BeginErrorReadLine();
        new Thread(ReadLoop) { IsBackground = true, Name = "lsp-reader" }.Start();
    }

    public async Task<JsonNode?> Request(string method, JsonNode? parameters, TimeSpan timeout)
    {
        int id = Interlocked.Increment(ref _nextId);
        var tcs = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = tcs;
        Send(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = parameters });
        var done = await Task.WhenAny(tcs.Task, Task.Delay(timeout));
        if (done != tcs.Task) throw new TimeoutException($"{method}: no answer within {timeout.TotalSeconds} s. Server log:\n{Log}");
        return await tcs.Task;
    }

    public void Notify(string method, JsonNode? parameters) =>
        Send(new JsonObject { ["jsonrpc"] = "2.0", ["method"] = method, ["params"] = parameters });

    private void Send(JsonObject message)
    {
        byte[] body = Encoding.UTF8.GetBytes(message.ToJsonString());
        byte[] header = Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n");
        lock (_write)
        {
            var stdin = _server.StandardInput.BaseStream;
            stdin.Write(header);
            stdin.Write(body);
            stdin.Flush();
        }
    }

    private void ReadLoop()
    {
        var stdout = _server.StandardOutput.BaseStream;
        try
        {
            while (true)
            {
                int length = -1;
                string? line;
                while ((line = ReadHeaderLine(stdout)) is not null && line.Length > 0)
                    if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = int.Parse(line["Content-Length:".Length..].Trim());
                if (line is null || length < 0) return;
                var body = new byte[length];
                stdout.ReadExactly(body);
                Dispatch(JsonNode.Parse(body)!);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        finally
        {
            foreach (var p in _pending.Values) p.TrySetException(new IOException("the language server closed its output"));
        }
    }

    private static string? ReadHeaderLine(Stream s)
    {
        var sb = new StringBuilder();
        int b;
        while ((b = s.ReadByte()) >= 0)
        {
            if (b == '\n') return sb.ToString().TrimEnd('\r');
            sb.Append((char)b);
        }
        return null;
    }

    private void Dispatch(JsonNode message)
    {
        string? method = message["method"]?.GetValue<string>();
        var id = message["id"];
        if (method is null && id is not null)
        {
            if (_pending.TryRemove(id.GetValue<int>(), out var tcs))
            {
                if (message["error"] is { } error) tcs.TrySetException(new InvalidOperationException(error.ToJsonString()));
                else tcs.TrySetResult(message["result"]?.DeepClone());
            }
            return;
        }
        if (method == "window/logMessage") lock (_log) _log.AppendLine(message["params"]?["message"]?.GetValue<string>());
        if (method is not null && id is not null)
            Send(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id.DeepClone(), ["result"] = _answer(method, message["params"]) });
    }

    public void Dispose()
    {
        try { if (!_server.HasExited) _server.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _server.Dispose();
    }
}

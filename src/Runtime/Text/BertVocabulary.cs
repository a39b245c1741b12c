using System.Text;

namespace Compiled.Nets.Text;

/// <summary>Reads BERT's <c>vocab.txt</c>: one WordPiece token per line, a token's id being its line number.</summary>
public static class BertVocabulary
{
    /// <summary>The largest vocab.txt read (multilingual BERT's is ≈ 1 MB).</summary>
    public const long MaxBytes = 64L << 20;

    /// <summary>Reads the tokens of a vocab.txt (UTF-8, LF or CRLF line endings).</summary>
    /// <exception cref="InvalidDataException">Missing, not a regular file (a device, a pipe), larger than <see cref="MaxBytes"/>,
    /// not UTF-8, empty, with CR-only line endings, or a token empty or repeated; the message names the file and line.</exception>
    public static IReadOnlyList<string> Read(string path)
    {
        byte[] bytes = ReadBounded(path, MaxBytes, "a vocabulary");
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (DecoderFallbackException e) { throw new InvalidDataException($"{path} is not UTF-8 (byte {e.Index}).", e); }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        if (text.Contains('\r') && !text.Contains('\n'))
            throw new InvalidDataException($"{path} uses CR-only line endings: it would read as one token. Convert it to LF line endings.");
        var tokens = text.Split('\n');
        int count = tokens.Length > 0 && tokens[^1].Length == 0 ? tokens.Length - 1 : tokens.Length; // the final newline
        if (count == 0) throw new InvalidDataException($"{path} is empty.");
        var result = new string[count];
        var seen = new Dictionary<string, int>(count, StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            string token = tokens[i].EndsWith('\r') ? tokens[i][..^1] : tokens[i];
            if (token.Length == 0) throw new InvalidDataException($"{path}, line {i + 1}: an empty token.");
            if (token.Contains('\r')) throw new InvalidDataException($"{path}, line {i + 1}: a carriage return inside a token.");
            if (!seen.TryAdd(token, i)) throw new InvalidDataException($"{path}, line {i + 1}: '{token}' repeats line {seen[token] + 1}; ids would be ambiguous.");
            result[i] = token;
        }
        return result;
    }

    /// <summary>
    /// The bytes of a regular file of at most <paramref name="limit"/> bytes. Devices, pipes and /proc files report
    /// a size of 0 and are refused before opening (/dev/zero would never end, a FIFO would block), as is a file
    /// larger than the limit; a file that grows while read stops at the limit and is refused.
    /// </summary>
    internal static byte[] ReadBounded(string path, long limit, string what)
    {
        FileInfo info;
        try
        {
            info = new FileInfo(path);
            if (info.LinkTarget is not null) info = info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? throw new InvalidDataException($"{path} is a link to a directory.");
        }
        catch (IOException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        if (!info.Exists) throw new InvalidDataException($"{path} does not exist (or is a broken link).");
        if (info.Length == 0) throw new InvalidDataException($"{path} is empty or not a regular file.");
        if (info.Length > limit) throw new InvalidDataException($"{path} has {info.Length} bytes, more than {what}'s limit of {limit}.");
        try
        {
            using var stream = new FileStream(info.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            var buffer = new byte[info.Length + 1];
            int total = 0, read;
            while (total < buffer.Length && (read = stream.Read(buffer, total, buffer.Length - total)) > 0) total += read;
            if (total > info.Length) throw new InvalidDataException($"{path} grew while being read.");
            return buffer[..total];
        }
        catch (IOException e) { throw new InvalidDataException($"{path} cannot be read: {e.Message}", e); }
        catch (UnauthorizedAccessException e) { throw new InvalidDataException($"{path} cannot be read: {e.Message}", e); }
    }
}

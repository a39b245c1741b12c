namespace Compiled.Nets.Text;

/// <summary>Look-ups in the generated character tables (BertCharacterTables.g.cs).</summary>
internal static partial class BertCharacterTables
{
    /// <summary>True when <paramref name="cp"/> lies in one of the sorted [first, last] pairs.</summary>
    public static bool In(int[] ranges, int cp)
    {
        int lo = 0, hi = ranges.Length / 2 - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (cp < ranges[2 * mid]) hi = mid - 1;
            else if (cp > ranges[2 * mid + 1]) lo = mid + 1;
            else return true;
        }
        return false;
    }

    /// <summary>The replacement of <paramref name="cp"/> in a key/start/text map, or null when it maps to itself.</summary>
    public static string? Lookup(int[] keys, int[] starts, string text, int cp)
    {
        int i = Array.BinarySearch(keys, cp);
        return i < 0 ? null : text[starts[i]..starts[i + 1]];
    }
}

// netstandard2.0 lacks this marker type, which records (init accessors) need.
namespace System.Runtime.CompilerServices
{
    internal static class IsExternalInit { }
}

//! Tasks that the array tests run with `Array::map_blocks`.

use rudask_collections::array::NdArray;

/// Squares every element.
#[rudask::task]
pub fn square(c: NdArray<f64>) -> NdArray<f64> {
    NdArray::new(c.mapv(|x| x * x))
}

/// Which elements are even.
#[rudask::task]
pub fn is_even(c: NdArray<i64>) -> NdArray<bool> {
    NdArray::new(c.mapv(|x| x % 2 == 0))
}

/// Drops the first element of the first axis: a chunk of another shape,
/// which the array's later tasks must report rather than mis-assemble.
#[rudask::task]
pub fn drop_first_row(c: NdArray<f64>) -> NdArray<f64> {
    NdArray::new(c.slice_axis(ndarray::Axis(0), ndarray::Slice::from(1..)).to_owned())
}

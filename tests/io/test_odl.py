"""ODL parsing of HDF-EOS structure metadata and ECS metadata."""

from __future__ import annotations

import pytest

from akkd_scale.errors import SceneFileError
from akkd_scale.io.odl import parse_odl

STRUCT = """GROUP=SwathStructure
\tGROUP=SWATH_1
\t\tSwathName="TIR_Swath"
\t\tGROUP=Dimension
\t\t\tOBJECT=Dimension_1
\t\t\t\tDimensionName="ImageLine"
\t\t\t\tSize=700
\t\t\tEND_OBJECT=Dimension_1
\t\tEND_GROUP=Dimension
\t\tGROUP=DataField
\t\t\tOBJECT=DataField_1
\t\t\t\tDataFieldName="ImageData10"
\t\t\t\tDimList=("ImageLine","ImagePixel")
\t\t\tEND_OBJECT=DataField_1
\t\tEND_GROUP=DataField
\tEND_GROUP=SWATH_1
END_GROUP=SwathStructure
END
"""

ECS = """
GROUP                  = PRODUCTMETADATA.0
  GROUPTYPE            = MASTERGROUP
  OBJECT                 = SCENECENTER
    NUM_VAL              = 2
    VALUE                = (36.5,
                            -116.9)
  END_OBJECT             = SCENECENTER
  OBJECT                 = POINTINGANGLE
    CLASS                = "3"
    VALUE                = -8.55
  END_OBJECT             = POINTINGANGLE
  OBJECT                 = NOTE
    VALUE                = "two words, a comma (and parenthesis)"
  END_OBJECT             = NOTE
  OBJECT                 = EXPONENT
    VALUE                = 1.5E-3
  END_OBJECT             = EXPONENT
END_GROUP              = PRODUCTMETADATA.0
END
"""


def test_struct_metadata():
    root = parse_odl(STRUCT)
    swath = root.find("SWATH_1", "GROUP")
    assert swath.attrs["SWATHNAME"] == "TIR_Swath"
    assert swath.find("Dimension_1").attrs == {"DIMENSIONNAME": "ImageLine", "SIZE": 700}
    assert swath.find("DataField_1").attrs["DIMLIST"] == ("ImageLine", "ImagePixel")


def test_ecs_values():
    root = parse_odl(ECS)
    assert root.find("SCENECENTER").value == (36.5, -116.9)
    pointing = root.find("pointingangle")
    assert pointing.value == -8.55 and pointing.attrs["CLASS"] == "3"
    assert root.find("NOTE").value == "two words, a comma (and parenthesis)"
    assert root.find("EXPONENT").value == pytest.approx(1.5e-3)
    assert root.find("MISSING") is None


@pytest.mark.parametrize(
    "text, problem",
    [
        ("GROUP = A\n  X = 1\nEND", "not closed"),
        ("END_GROUP = A\nEND", "without an open block"),
        ("GROUP = A\n  this line has no equals\nEND_GROUP = A\nEND", "cannot parse"),
        ('OBJECT = A\n VALUE = "unterminated\nEND', "unterminated"),
    ],
)
def test_malformed_odl(text, problem):
    with pytest.raises(SceneFileError, match=f"somefile: coremetadata.0.*{problem}"):
        parse_odl(text, source="somefile: coremetadata.0")

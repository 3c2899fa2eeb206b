"""Inventory files: CSV and BrickLink/BrickStore XML in, canonical CSV out."""

from __future__ import annotations

import io
import os
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketsync import inventory_files
from marketsync.errors import InputFileError
from marketsync.inventory_files import CSV_COLUMNS, read_inventory_file, write_inventory_csv
from marketsync.model import InventoryLot

HEADER = "part_number,color_id,condition,location,quantity"


def write(tmp_path: Path, content: str | bytes, name: str = "inventory.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def error_for(path: Path | str) -> str:
    """The message read_inventory_file raises for ``path``, checked to be one line naming it."""
    with pytest.raises(InputFileError) as info:
        read_inventory_file(path)
    message = info.value.message
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{path}:") or message.startswith(f"{path} line ")
    return message


def csv_error(tmp_path: Path, content: str | bytes) -> str:
    path = write(tmp_path, content)
    return error_for(path).removeprefix(str(path))


def lot(part="3001", color=11, condition="new", location="A01", quantity=25, **extra) -> InventoryLot:
    return InventoryLot(part, color, condition, location, quantity, **extra)


# --- valid CSV --------------------------------------------------------------------
def test_csv_with_every_column_in_any_order(tmp_path):
    path = write(
        tmp_path,
        " Quantity ,NAME,Part_Number,color_id,condition,location,item_type,price,bricklink_lot_id\n"
        '25,"Brick 2 x 4, black",3001,11,N,A01,PART,0.120,123456\n'
        "7,,3002,0,used,,,,\n"
        " 3 , Plate , 3023 , 5 , U , B 2 , , 1.5 , \n",
    )
    assert read_inventory_file(path) == [
        lot(name="Brick 2 x 4, black", item_type="PART", price=Decimal("0.120"), bricklink_lot_id="123456"),
        lot("3002", 0, "used", "", 7),
        lot("3023", 5, "used", "B 2", 3, name="Plate", price=Decimal("1.5")),
    ]


def test_csv_bom_semicolons_quoted_fields_and_blank_lines(tmp_path):
    path = write(
        tmp_path,
        b"\xef\xbb\xbfpart_number;color_id;condition;location;quantity;name\r\n"
        b"\r\n"
        b'3001;11;new;A01;25;"Brick; 2 x 4, \xe2\x80\x9cblack\xe2\x80\x9d"\r\n'
        b";;;;;\r\n"
        b"   \r\n"
        b"3002;0;U;;0;\r\n",
    )
    assert read_inventory_file(path) == [
        lot(name="Brick; 2 x 4, \u201cblack\u201d"),
        lot("3002", 0, "used", "", 0),
    ]


def test_csv_tab_delimited(tmp_path):
    path = write(tmp_path, "part_number\tcolor_id\tcondition\tlocation\tquantity\tname\n3001\t11\tN\tA 1\t2\tBrick, 2x4\n")
    assert read_inventory_file(path) == [lot(location="A 1", quantity=2, name="Brick, 2x4")]


def test_csv_excel_sep_line(tmp_path):
    path = write(tmp_path, f"sep=;\n{HEADER.replace(',', ';')}\n3001;11;N;A01;1,5\n")
    # with ';' as delimiter "1,5" is one value and is refused as a quantity, on line 3
    message = error_for(path)
    assert message == f"{path} line 3: quantity '1,5' is not a whole number"


def test_csv_header_only_is_an_empty_inventory(tmp_path):
    assert read_inventory_file(write(tmp_path, HEADER + "\n")) == []


def test_csv_trailing_empty_column_is_tolerated(tmp_path):
    path = write(tmp_path, HEADER + ",\n3001,11,N,A01,25,\n3002,1,N,A01,1\n")
    assert read_inventory_file(path) == [lot(), lot("3002", 1, quantity=1)]
    path = write(tmp_path, HEADER + ",name\n3001,11,N,A01,25\n")
    assert error_for(path) == f"{path} line 2: has 5 values but the header names 6 columns"


def test_csv_quoted_newline_keeps_physical_line_numbers(tmp_path):
    content = (
        f"{HEADER},name\n"  # 1
        '3001,11,N,A01,25,"Brick\n'  # 2
        '2 x 4"\n'  # 3
        "\n"  # 4
        "3002,11,N,A01,abc,Plate\n"  # 5
    )
    assert csv_error(tmp_path, content) == " line 5: quantity 'abc' is not a whole number"


def test_csv_quoted_newline_value_is_kept(tmp_path):
    path = write(tmp_path, f'{HEADER},name\n3001,11,N,A01,25,"Brick\n2 x 4"\n')
    assert read_inventory_file(path) == [lot(name="Brick\n2 x 4")]


def test_format_is_detected_by_content_not_extension(tmp_path):
    xml = write(tmp_path, "<INVENTORY><ITEM><ITEMID>3001</ITEMID><COLOR>11</COLOR>"
                          "<CONDITION>N</CONDITION><QTY>25</QTY><REMARKS>A01</REMARKS></ITEM></INVENTORY>",
                "inventory.csv")
    csv_file = write(tmp_path, f"{HEADER}\n3001,11,N,A01,25\n", "inventory.xml")
    assert read_inventory_file(xml) == read_inventory_file(csv_file) == [lot()]


# --- CSV errors -------------------------------------------------------------------
def rows(*lines: str) -> str:
    return HEADER + "\n" + "".join(line + "\n" for line in lines)


GOOD = "3001,11,N,A01,25"


@pytest.mark.parametrize(
    "content, expected",
    [
        (rows(GOOD, "3002,1,N,A,1", "3003,1,N,A,1", "3004,1,N,A,1", "3005,1,N,A,1", "3006,1,N,A,abc"),
         " line 7: quantity 'abc' is not a whole number"),
        (rows(GOOD, "3002,1,mint,A,1"), " line 3: condition 'mint' is not new, used, N or U"),
        (rows("3002,1,,A,1"), " line 2: condition is empty (must be new, used, N or U)"),
        (rows("3002,1,N,A,1.5"), " line 2: quantity '1.5' is not a whole number"),
        (rows("3002,1,N,A,-1"), " line 2: quantity '-1' must not be negative"),
        (rows("3002,1,N,A,"), " line 2: quantity is empty"),
        (rows('3002,1,N,A,"1,000"'), " line 2: quantity '1,000' is not a whole number "
                                     "(write it without a thousands separator)"),
        (rows("3002,1,N,A,1000000001"), " line 2: quantity '1000000001' is absurdly large "
                                        "(more than 1,000,000,000)"),
        (rows("3002,1,N,A," + "9" * 5000), " line 2: quantity '" + "9" * 39 + "…' is absurdly large "
                                           "(more than 1,000,000,000)"),
        (rows("3002,1,N,A,\u0663"), " line 2: quantity '\u0663' is not a whole number"),
        (rows("3002,1,N,A,1_000"), " line 2: quantity '1_000' is not a whole number"),
        (rows("3002,x,N,A,1"), " line 2: color_id 'x' is not a whole number"),
        (rows("3002,-1,N,A,1"), " line 2: color_id '-1' must not be negative"),
        (rows("  ,1,N,A,1"), " line 2: part_number is empty"),
        (rows(GOOD + ",extra"), " line 2: has 6 values but the header names 5 columns"),
        (rows("3001,11,N,A01"), " line 2: has 4 values but the header names 5 columns"),
        (rows(GOOD, 'x,"unclosed,N,A,1', GOOD), " line 3: malformed CSV (a quote opened here is never closed)"),
        (rows('3001,"11"x,N,A,1'), " line 2: malformed CSV (',' expected after '\"')"),
        (rows("3001,11,N,A01,2\x003"), " line 2: contains a NUL byte (is this a binary file?)"),
        ("", ": empty file"),
        (" \n\t\r\n", ": empty file"),
        ("\ufeff", ": empty file"),
        (b"part_number,color\xff_id\n", ": not UTF-8 text (byte 0xff at offset 17)"),
        (b"\xef\xbb\xbfpart_\xff", ": not UTF-8 text (byte 0xff at offset 8)"),
        ("part_number,color_id".encode("utf-16"),
         ": not UTF-8 text (byte 0xff at offset 0; it looks like UTF-16, save it as UTF-8)"),
        ("part_number,color_id,condition\n3001,11,N\n",
         " line 1: missing column(s) location, quantity "
         "(header must include part_number,color_id,condition,location,quantity)"),
        ("part_number,color_id,condition,location,quantiy\n",
         " line 1: missing column(s) quantity (header must include "
         "part_number,color_id,condition,location,quantity); unknown column(s) quantiy "
         "(allowed: part_number, color_id, condition, location, quantity, name, item_type, "
         "price, bricklink_lot_id)"),
        (HEADER + ",Colour\n", " line 1: unknown column(s) Colour (allowed: part_number, color_id, "
                               "condition, location, quantity, name, item_type, price, bricklink_lot_id)"),
        ("\n\n" + HEADER + ",Quantity\n", " line 3: column quantity appears twice in the header"),
        ("3001,11,N,A01,25\n", " line 1: no header row (the first line must name the columns "
                               "part_number,color_id,condition,location,quantity)"),
        (HEADER + ",,name\n3001,11,N,A01,25,oops,\n", " line 2: value 'oops' in column 6, which has no header"),
    ],
)
def test_csv_errors(tmp_path, content, expected):
    assert csv_error(tmp_path, content) == expected


@pytest.mark.parametrize(
    "price, expected",
    [
        ("-0.5", "price '-0.5' must not be negative"),
        ("NaN", "price 'NaN' is not a number"),
        ("Infinity", "price 'Infinity' is not a number"),
        ("-inf", "price '-inf' is not a number"),
        ("1e3", "price '1e3' is not a number"),
        ("$1", "price '$1' is not a number"),
        ('"1,50"', "price '1,50' is not a number (use a dot as decimal separator)"),
        ("1" * 20, "price '" + "1" * 20 + "' is absurdly large"),
    ],
)
def test_csv_price_errors(tmp_path, price, expected):
    content = f"{HEADER},price\n3001,11,N,A01,25,1.00\n3002,11,N,A01,25,{price}\n"
    assert csv_error(tmp_path, content) == f" line 3: {expected}"


def test_csv_prices_accepted(tmp_path):
    content = f"{HEADER},price\n3001,11,N,A,1,0\n3001,11,N,B,1,.5\n3001,11,N,C,1,2.\n3001,11,N,D,1,\n"
    prices = [found.price for found in read_inventory_file(write(tmp_path, content))]
    assert prices == [Decimal("0"), Decimal("0.5"), Decimal("2"), None]


def test_csv_duplicate_lot_names_both_lines(tmp_path):
    content = rows("3002,1,N,A01,1", "3003,1,N,A01,1", GOOD, "3001,12,N,A01,1", "3001,11,U,A01,1", "3001,11,N,A02,1",
                   "3001,11,N,a01,1", "3001,11,N, A01 ,5")
    assert csv_error(tmp_path, content) == " line 9: duplicate lot 3001 colour 11 new at A01 (first on line 4)"


def test_csv_duplicate_lot_without_location(tmp_path):
    content = rows("3001,11,new,,1", "3001,11,N,,2")
    assert csv_error(tmp_path, content) == " line 3: duplicate lot 3001 colour 11 new with no location (first on line 2)"


def test_csv_part_numbers_differing_in_case_are_distinct(tmp_path):
    path = write(tmp_path, rows("973pb1,11,N,A,1", "973PB1,11,N,A,1"))
    assert [found.part_number for found in read_inventory_file(path)] == ["973pb1", "973PB1"]


def test_csv_reports_first_problem_and_counts_the_rest(tmp_path):
    content = rows("3001,11,N,A01,abc", GOOD, "3002,x,N,A,1", GOOD)
    assert csv_error(tmp_path, content) == (
        " line 2: quantity 'abc' is not a whole number (and 2 more problems in the file)"
    )


def test_control_characters_in_values_are_escaped(tmp_path):
    content = f'{HEADER}\n3001,11,"N\nX",A01,1\n'
    assert csv_error(tmp_path, content) == " line 2: condition 'N\\nX' is not new, used, N or U"


# --- file system errors -----------------------------------------------------------
def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    assert error_for(path) == f"{path}: no such file"


def test_missing_directory(tmp_path):
    path = tmp_path / "no-dir" / "nope.csv"
    assert error_for(path) == f"{path}: no such file"


def test_directory(tmp_path):
    assert error_for(tmp_path) == f"{tmp_path}: is a directory, not a file"


def test_path_below_a_file(tmp_path):
    path = write(tmp_path, HEADER) / "x.csv"
    assert error_for(path).startswith(f"{path}: cannot read the file (")


def test_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path, rows(GOOD))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(inventory_files, "open", denied, raising=False)
    assert error_for(path) == f"{path}: permission denied"


def test_unreadable_file_for_real():
    """Root reads anything, so the import runs as ``nobody`` on a mode-0 file."""
    import shutil
    import tempfile

    from test_database import as_nobody, cannot_run_as_nobody, proc_error

    reason = cannot_run_as_nobody()
    assert reason is None, reason
    shared = tempfile.mkdtemp(prefix="marketsync-unreadable-")
    try:
        os.chmod(shared, 0o777)
        path = write(Path(shared), rows(GOOD))
        path.chmod(0)
        result = as_nobody("inventory", "import", path.name, cwd=shared)
        message = proc_error(result, 2)  # click checks the argument before marketsync reads it
        assert path.name in message and "not readable" in message
        assert not os.path.exists(os.path.join(shared, "marketsync.db"))  # nothing half-written
    finally:
        shutil.rmtree(shared)


def test_name_with_nul_byte():
    with pytest.raises(InputFileError) as info:
        read_inventory_file("bad\x00name.csv")
    assert info.value.message.startswith("bad\\x00name.csv: not a usable file name")


# --- valid XML ----------------------------------------------------------------------
BRICKLINK_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<INVENTORY>
  <ITEM>
    <ITEMTYPE>P</ITEMTYPE>
    <ITEMID>3001</ITEMID>
    <COLOR>11</COLOR>
    <CONDITION>N</CONDITION>
    <QTY>25</QTY>
    <PRICE>0.12</PRICE>
    <REMARKS>A01 &amp;#40;top&amp;#41; &amp;amp; more</REMARKS>
    <LOTID>123456</LOTID>
    <ITEMNAME>Brick 2 x 4 &amp;#40;old&amp;#41;</ITEMNAME>
  </ITEM>
  <ITEM><ITEMTYPE>s</ITEMTYPE><ITEMID>6020-1</ITEMID><CONDITION>used</CONDITION><QTY>1</QTY></ITEM>
  <item><itemtype>M</itemtype><itemid>sw0001a</itemid><color></color><condition>U</condition>
        <qty>2</qty><remarks>  B 3  </remarks><LotID>77</LotID><MINQTY>1</MINQTY><SALE>0</SALE></item>
</INVENTORY>
"""


def test_bricklink_xml(tmp_path):
    path = write(tmp_path, BRICKLINK_XML, "inventory.xml")
    assert read_inventory_file(path) == [
        lot(location="A01 (top) & more", price=Decimal("0.12"), bricklink_lot_id="123456",
            name="Brick 2 x 4 (old)", item_type="PART"),
        lot("6020-1", 0, "used", "", 1, item_type="SET"),
        lot("sw0001a", 0, "used", "B 3", 2, item_type="MINIFIG", bricklink_lot_id="77"),
    ]


def test_brickstore_xml_with_bom_and_leading_whitespace(tmp_path):
    content = (
        b"\xef\xbb\xbf\n\n  <?xml version='1.0' encoding='UTF-8'?>\n"
        b"<!-- BrickStore -->\n"
        b"<BrickStoreXML>\n"
        b" <Inventory>\n"
        b"  <Item>\n"
        b"   <ItemID>3001</ItemID><ItemTypeID>P</ItemTypeID><ColorID>11</ColorID>\n"
        b"   <ItemName>Brick 2 x 4</ItemName><ColorName>Black</ColorName><Status>I</Status>\n"
        b"   <Qty>4</Qty><Price>0.050</Price><Condition>N</Condition><Remarks>A01</Remarks>\n"
        b"   <LotID>9</LotID>\n"
        b"  </Item>\n"
        b"  <Item><ItemID>3001</ItemID><ItemTypeID>P</ItemTypeID><ColorID>11</ColorID>\n"
        b"   <Qty>x</Qty><Condition>N</Condition><Remarks>A02</Remarks></Item>\n"
        b" </Inventory>\n"
        b"</BrickStoreXML>\n"
    )
    path = write(tmp_path, content, "inventory.bsx")
    # line numbers count the blank lines before the declaration too
    assert error_for(path) == f"{path} line 13: <QTY> 'x' is not a whole number"
    path = write(tmp_path, content.replace(b"<Qty>x</Qty>", b"<Qty>1</Qty>"), "inventory.bsx")
    assert read_inventory_file(path) == [
        lot(quantity=4, price=Decimal("0.050"), name="Brick 2 x 4", item_type="PART", bricklink_lot_id="9"),
        lot(location="A02", quantity=1, item_type="PART"),
    ]


@pytest.mark.parametrize("letter, item_type", list(inventory_files.ITEM_TYPES.items()) + [("original box", "ORIGINAL_BOX")])
def test_xml_item_types(tmp_path, letter, item_type):
    content = (f"<INVENTORY><ITEM><ITEMTYPE>{letter}</ITEMTYPE><ITEMID>x</ITEMID>"
               "<CONDITION>N</CONDITION><QTY>1</QTY></ITEM></INVENTORY>")
    assert read_inventory_file(write(tmp_path, content, "i.xml"))[0].item_type == item_type


def test_xml_declared_latin1_ascii_file_is_read(tmp_path):
    content = ('<?xml version="1.0" encoding="ISO-8859-1"?><INVENTORY><ITEM><ITEMID>3001</ITEMID>'
               "<COLOR>11</COLOR><CONDITION>N</CONDITION><QTY>25</QTY><REMARKS>A01</REMARKS></ITEM></INVENTORY>")
    assert read_inventory_file(write(tmp_path, content, "i.xml")) == [lot()]


def test_empty_inventory_xml(tmp_path):
    assert read_inventory_file(write(tmp_path, "<INVENTORY>\n</INVENTORY>", "i.xml")) == []


# --- XML errors ---------------------------------------------------------------------
def xml_items(*items: str) -> str:
    return "<INVENTORY>\n" + "".join(item + "\n" for item in items) + "</INVENTORY>\n"


ITEM = "<ITEM><ITEMID>3001</ITEMID><COLOR>11</COLOR><CONDITION>N</CONDITION><QTY>25</QTY><REMARKS>A01</REMARKS></ITEM>"


def xml_error(tmp_path: Path, content: str) -> str:
    path = write(tmp_path, content, "inventory.xml")
    return error_for(path).removeprefix(str(path))


def test_xml_negative_quantity_reports_the_item_line(tmp_path):
    items = [ITEM.replace("3001", f"30{n:02}") for n in range(10)]
    items.append("<ITEM>\n <ITEMID>3001</ITEMID>\n <CONDITION>N</CONDITION>\n <QTY>-3</QTY>\n</ITEM>")
    assert xml_error(tmp_path, xml_items(*items)) == " line 12: <QTY> '-3' must not be negative"


@pytest.mark.parametrize(
    "item, expected",
    [
        (ITEM.replace("<QTY>25</QTY>", ""), "<ITEM> has no <QTY>"),
        (ITEM.replace("<ITEMID>3001</ITEMID>", ""), "<ITEM> has no <ITEMID>"),
        (ITEM.replace("3001", " "), "<ITEMID> is empty"),
        (ITEM.replace("<CONDITION>N</CONDITION>", ""), "<ITEM> has no <CONDITION>"),
        (ITEM.replace(">N<", ">mint<"), "<CONDITION> 'mint' is not new, used, N or U"),
        (ITEM.replace("<QTY>25", "<QTY>2.5"), "<QTY> '2.5' is not a whole number"),
        (ITEM.replace("<QTY>25", "<QTY>2000000000"), "<QTY> '2000000000' is absurdly large (more than 1,000,000,000)"),
        (ITEM.replace(">11<", ">black<"), "<COLOR> 'black' is not a whole number"),
        (ITEM.replace("<QTY>", "<PRICE>-1</PRICE><QTY>"), "<PRICE> '-1' must not be negative"),
        (ITEM.replace("<QTY>", "<PRICE>NaN</PRICE><QTY>"), "<PRICE> 'NaN' is not a number"),
        (ITEM.replace("<QTY>", "<ITEMTYPE>X</ITEMTYPE><QTY>"), "<ITEMTYPE> 'X' is not one of P, S, M, B, G, C, I, O, U"),
        (ITEM.replace("<QTY>25</QTY>", "<QTY>25</QTY><qty>3</qty>"), "<QTY> appears twice in one <ITEM>"),
    ],
)
def test_xml_item_errors(tmp_path, item, expected):
    assert xml_error(tmp_path, xml_items(ITEM.replace("3001", "3002"), item)) == f" line 3: {expected}"


def test_xml_duplicate_lot(tmp_path):
    content = xml_items(ITEM, ITEM.replace(">N<", ">U<"), ITEM.replace(">N<", ">new<"))
    assert xml_error(tmp_path, content) == " line 4: duplicate lot 3001 colour 11 new at A01 (first on line 2)"


def test_xml_duplicate_after_entity_decoding(tmp_path):
    content = xml_items(ITEM.replace("A01", "A&amp;B"), ITEM.replace("A01", "A&amp;amp;B"))
    assert xml_error(tmp_path, content) == " line 3: duplicate lot 3001 colour 11 new at A&B (first on line 2)"


def test_xml_malformed_reports_parser_line(tmp_path):
    content = xml_items(ITEM, ITEM, "<ITEM><ITEMID>3001</ITEMID></ITEMX>", ITEM)
    assert xml_error(tmp_path, content) == " line 4: not well-formed XML (mismatched tag)"


def test_xml_unterminated(tmp_path):
    assert xml_error(tmp_path, "<INVENTORY>\n" + ITEM + "\n") == " line 3: not well-formed XML (no element found)"


def test_xml_bomb_is_refused(tmp_path):
    content = (
        '<?xml version="1.0"?>\n'
        '<!DOCTYPE lolz [\n'
        ' <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        ']>\n'
        "<INVENTORY><ITEM><ITEMID>&lol2;</ITEMID></ITEM></INVENTORY>\n"
    )
    assert xml_error(tmp_path, content) == " line 2: DOCTYPE declarations are not allowed in an inventory XML"


def test_xml_entity_without_doctype_is_refused(tmp_path):
    content = '<INVENTORY>\n<!ENTITY x "y">\n</INVENTORY>\n'
    assert xml_error(tmp_path, content) == " line 2: ENTITY declarations are not allowed in an inventory XML"


def test_xml_undefined_entity(tmp_path):
    content = xml_items(ITEM.replace("A01", "A&nbsp;1"))
    assert xml_error(tmp_path, content) == " line 2: not well-formed XML (undefined entity)"


def test_xml_without_items_in_unknown_root(tmp_path):
    message = xml_error(tmp_path, "<html><body>Not found</body></html>")
    assert message == ": no <ITEM> elements found (is this a BrickLink inventory XML?)"


def test_xml_nested_item(tmp_path):
    content = "<INVENTORY>\n<ITEM><ITEMID>1</ITEMID>\n<ITEM></ITEM></ITEM></INVENTORY>"
    assert xml_error(tmp_path, content) == " line 3: <ITEM> inside another <ITEM> (line 2)"


def test_xml_counts_further_problems(tmp_path):
    content = xml_items(ITEM.replace("25", "a"), ITEM.replace("25", "b"))
    assert xml_error(tmp_path, content) == (
        " line 2: <QTY> 'a' is not a whole number (and 1 more problem in the file)"
    )


# --- writing and round trip ---------------------------------------------------------
TRICKY = [
    lot(name='Brick 2 x 4, "black"; old', item_type="PART", price=Decimal("0.120"), bricklink_lot_id="1"),
    lot("3001", 11, "used", "", 0),
    lot("973pb1c01", 0, "new", "Shelf\n2", 1_000_000_000, name="Torso\rwith\r\nlines", price=Decimal("0")),
    lot("x", 2, "used", "<tag> &amp;", 3, price=Decimal("1E-7"), item_type="SET"),
]


def test_write_canonical_csv():
    out = io.StringIO()
    write_inventory_csv([lot(name="Brick, 2 x 4", price=Decimal("1E+1"))], out)
    assert out.getvalue() == (
        "part_number,color_id,condition,location,quantity,name,item_type,price,bricklink_lot_id\n"
        '3001,11,new,A01,25,"Brick, 2 x 4",,10,\n'
    )
    assert CSV_COLUMNS == tuple(out.getvalue().splitlines()[0].split(","))


def test_round_trip(tmp_path):
    path = tmp_path / "out.csv"
    with open(path, "w", encoding="utf-8", newline="") as stream:
        write_inventory_csv(TRICKY, stream)
    assert read_inventory_file(path) == TRICKY


def test_read_write_read_is_stable(tmp_path):
    first = read_inventory_file(write(tmp_path, BRICKLINK_XML, "in.xml"))
    out = io.StringIO()
    write_inventory_csv(first, out)
    assert read_inventory_file(write(tmp_path, out.getvalue(), "again.csv")) == first


def _clean(text: str) -> bool:
    return text == text.strip() and text != ""


_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=12
).filter(_clean)
_lots = st.builds(
    InventoryLot,
    part_number=_text,
    color_id=st.integers(0, 500),
    condition=st.sampled_from(["new", "used"]),
    location=st.one_of(st.just(""), _text),
    quantity=st.integers(0, inventory_files.MAX_QUANTITY),
    bricklink_lot_id=st.one_of(st.none(), _text),
    name=st.one_of(st.none(), _text),
    item_type=st.one_of(st.none(), _text),
    price=st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_lots, max_size=6, unique_by=lambda x: (x.part_number, x.color_id, x.condition, x.location)))
def test_round_trip_property(tmp_path, lots):
    path = tmp_path / "prop.csv"
    with open(path, "w", encoding="utf-8", newline="") as stream:
        write_inventory_csv(lots, stream)
    assert read_inventory_file(path) == lots


_noise = st.one_of(
    st.binary(max_size=200),
    st.text(alphabet=st.sampled_from(list('<>/&;#"\',;\t\r\n xNUITEMQTYpart_number0123456789.-\ufeff\x00')), max_size=200)
    .map(lambda text: text.encode("utf-8")),
    st.tuples(st.sampled_from([rows(GOOD).encode(), BRICKLINK_XML.encode()]), st.integers(0, 400), st.binary(max_size=8))
    .map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_noise)
def test_garbage_never_gives_a_traceback(tmp_path, content):
    path = write(tmp_path, content, "noise")
    try:
        result = read_inventory_file(path)
    except InputFileError as exc:
        assert "\n" not in exc.message and exc.message.startswith(f"{path}")
    else:
        assert all(isinstance(found, InventoryLot) for found in result)


def test_xml_declaring_iso_8859_1_with_accents_is_read_not_refused(tmp_path):
    """BrickStore and older BrickLink exports declare ISO-8859-1: the declaration is honoured."""
    content = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<INVENTORY><ITEM><ITEMTYPE>P</ITEMTYPE>'
               '<ITEMID>3001</ITEMID><COLOR>11</COLOR><QTY>5</QTY><CONDITION>N</CONDITION>'
               '<REMARKS>Café Ä1</REMARKS></ITEM></INVENTORY>\n').encode("iso-8859-1")
    path = tmp_path / "latin.xml"
    path.write_bytes(content)
    [lot] = read_inventory_file(path)
    assert (lot.part_number, lot.location, lot.quantity) == ("3001", "Café Ä1", 5)
    path.write_bytes(content.replace(b"ISO-8859-1", b"KLINGON-1"))
    with pytest.raises(InputFileError, match="unknown encoding 'KLINGON-1'"):
        read_inventory_file(path)

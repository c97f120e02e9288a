<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r literal="{{braces}}" mixed="id-{//order[1]/@id}-end" two="{//order[1]/@id}{//order[2]/@id}" expr="{count(//item) * 2}">
      <a href="/orders/{//order[last()]/@id}?q={string-length('abc')}"/>
    </r>
  </xsl:template>
</xsl:stylesheet>

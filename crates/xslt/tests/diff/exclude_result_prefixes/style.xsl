<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:a="urn:a" xmlns:b="urn:b" xmlns:c="urn:c" xmlns="urn:default" exclude-result-prefixes="a b">
  <xsl:template match="/">
    <r><a:x/><plain/><c:y xsl:exclude-result-prefixes="c"><z/></c:y></r>
  </xsl:template>
</xsl:stylesheet>
